"""Benchmark: provisioning jobs against a private slapd, as a ratio to raw ldap3 writes.

Baseline: the same group-member adds done directly with one ldap3 connection.
Measured: the same number of jobs run through services.job_run (lock the job row,
read the directory, write the difference, record the outcome, settle the request).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itportal \\
        .venv/bin/python bench/bench_provisioning.py [--jobs 300]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

import ldap3  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    n = args.jobs

    from devtools.devdirectory import PrivateSlapd, ldif_entry

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    with tempfile.TemporaryDirectory() as tmp, PrivateSlapd(Path(tmp), dbnosync=True) as slapd:
        try:
            from django.utils import timezone

            from provisioning import services
            from provisioning.backends import reset_backends
            from provisioning.choices import ActionKind, Direction
            from provisioning.models import ProvisioningJob
            from requests_app import notifications
            from requests_app.models import ServiceRequest
            from tests.conftest import Org
            from tests.factories import CatalogueItemFactory

            # Mail is a Celery task of its own in production, not part of a job's cost; the
            # test settings would run it inline, so it is left out here.
            notifications.enqueue = lambda request_id, event: None
            settings.DIRECTORY = {**settings.DIRECTORY, **slapd.config_kwargs()}
            reset_backends()
            people = "\n".join(
                ldif_entry(
                    slapd.user_dn(f"b{i:05d}"),
                    {"objectClass": ["inetOrgPerson"], "uid": f"b{i:05d}", "cn": "x", "sn": "x"},
                )
                for i in range(n)
            )
            groups = "\n".join(
                ldif_entry(
                    slapd.group_dn(name),
                    {"objectClass": ["groupOfNames"], "cn": name, "member": [slapd.bind_dn]},
                )
                for name in ("baseline", "jobs")
            )
            slapd.load_ldif(people + "\n" + groups)

            # Baseline: raw ldap3, one connection, read-then-add like the backend does.
            conn = ldap3.Connection(slapd.url, slapd.bind_dn, slapd.bind_password, auto_bind=True)
            start = time.perf_counter()
            for i in range(n):
                conn.search(
                    slapd.group_dn("baseline"), "(objectClass=*)", "BASE", attributes=["member"]
                )
                conn.modify(
                    slapd.group_dn("baseline"),
                    {"member": [(ldap3.MODIFY_ADD, [slapd.user_dn(f"b{i:05d}")])]},
                )
            baseline = time.perf_counter() - start
            conn.unbind()

            org = Org()
            item = CatalogueItemFactory(service_owner=org.service_desk)
            snapshot = item.snapshot()
            requests = ServiceRequest.objects.bulk_create(
                [
                    ServiceRequest(
                        requester=org.alice.user,
                        beneficiary=org.alice,
                        item=item,
                        item_version=item.version,
                        item_snapshot=snapshot,
                        cost_centre=org.cost_centre,
                        price_once=0,
                        price_monthly=0,
                        fulfilment_group=item.service_owner,
                        state="in_fulfilment",
                        created_at=timezone.now(),
                    )
                    for _ in range(n)
                ]
            )
            jobs = ProvisioningJob.objects.bulk_create(
                [
                    ProvisioningJob(
                        request=r,
                        direction=Direction.GRANT,
                        position=1,
                        kind=ActionKind.ADD_TO_GROUP,
                        user_uid=f"b{i:05d}",
                        target_dn=slapd.group_dn("jobs"),
                        dialect="openldap",
                    )
                    for i, r in enumerate(requests)
                ]
            )
            start = time.perf_counter()
            for job in jobs:
                services.job_run(job_id=job.pk)
            measured = time.perf_counter() - start
            done = ProvisioningJob.objects.filter(state="succeeded").count()
            print("| jobs | raw ldap3 s | job_run s | raw per s | jobs per s | ratio |")
            print("|---|---|---|---|---|---|")
            print(
                f"| {n} ({done} succeeded) | {baseline:.2f} | {measured:.2f} | "
                f"{n / baseline:.0f} | {n / measured:.0f} | {measured / baseline:.1f} |"
            )
        finally:
            reset_backends()
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
