from django.apps import AppConfig


class MissionsConfig(AppConfig):
    name = "missions"
    verbose_name = "Missions"

    def ready(self):
        from ledger.verify import check_register

        from . import metrics, verify

        metrics.register()
        for name, check in verify.CHECKS.items():
            check_register(name, check)
