"""Adapters to the company's data services that a deployment may run outside this database
(consent today). Each module offers one small interface and picks its implementation from the
settings; the export API and the sync engine call the interface, never an implementation."""
