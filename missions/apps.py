from django.apps import AppConfig


class MissionsConfig(AppConfig):
    name = "missions"
    verbose_name = "Missions"

    def ready(self):
        from . import metrics

        metrics.register()
