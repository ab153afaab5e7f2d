"""OAuth 2.0 for connections: Connect in the admin and the token lifecycle (docs/adr/0007).

- ``flows``: what a connector declares (``Connector.token_flows``: auth kind -> flow).
- ``backends``: social-core's OAuth2 backends, glued to a connection (endpoints, HTTP client).
- ``connect``: Connect, Reconnect and Disconnect (the admin's views call these).
- ``tokens``: the access token of a connection, renewed when due, one renewal at a time.
- ``lock``: the single-flight lock behind renewals (Redis, else the database).
"""
