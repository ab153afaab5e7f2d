"""Send the backbone's models to its own database alias.

``settings.BACKBONE_DB_ALIAS`` is ``"backbone"`` when ``BACKBONE_DATABASE_URL`` names a
separate database, and ``"default"`` otherwise, so one connection (and one transaction)
serves both when they are the same database.
"""

from django.conf import settings

BACKBONE_APP = "backbone"


def backbone_alias() -> str:
    return settings.BACKBONE_DB_ALIAS


class BackboneRouter:
    def db_for_read(self, model, **hints):
        if model._meta.app_label == BACKBONE_APP:
            return backbone_alias()
        return None

    db_for_write = db_for_read

    def allow_relation(self, obj1, obj2, **hints):
        in_backbone = {obj1._meta.app_label == BACKBONE_APP, obj2._meta.app_label == BACKBONE_APP}
        if len(in_backbone) == 2 and backbone_alias() != "default":
            return False
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == BACKBONE_APP:
            return db == backbone_alias()
        if db == "backbone":
            return False
        return None
