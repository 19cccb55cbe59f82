from django.core.management.base import BaseCommand, CommandError

from ledger.verify import ledger_verify


class Command(BaseCommand):
    help = "Check every invariant of the ledger; exit non-zero naming the broken rows."

    def handle(self, *args, **options):
        results = ledger_verify()
        for name, problems in results.items():
            mark = self.style.SUCCESS("ok  ") if not problems else self.style.ERROR("FAIL")
            self.stdout.write(f"{mark} {name}")
            for problem in problems[:50]:
                self.stdout.write(f"       {problem}")
            if len(problems) > 50:
                self.stdout.write(f"       ... and {len(problems) - 50} more")
        broken = sum(len(p) for p in results.values())
        if broken:
            raise CommandError(f"ledger_verify: {broken} problem(s)")
        self.stdout.write("ledger is sound")
