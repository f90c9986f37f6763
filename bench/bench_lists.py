"""Benchmark: list pages stay flat as requests grow.

Creates a throwaway PostgreSQL test database, renders the portal's list pages
with a small and a large number of requests, and reports the queries per page
and the median render time as a ratio large/small, measured in one process.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itportal \
        .venv/bin/python bench/bench_lists.py [--small 200] [--large 20000]
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402


def seed(org, item, count: int) -> None:
    """Add ``count`` requests awaiting the manager's decision, in bulk."""
    from django.utils import timezone

    from requests_app.choices import ApprovalStatus, RequestState
    from requests_app.models import Approval, ServiceRequest

    snapshot = item.snapshot()
    now = timezone.now()
    batch = [
        ServiceRequest(
            requester=org.alice.user,
            beneficiary=org.alice,
            item=item,
            item_version=item.version,
            item_snapshot=snapshot,
            answers={},
            cost_centre=org.cost_centre,
            price_once=item.price_once,
            price_monthly=item.price_monthly,
            fulfilment_group=item.service_owner,
            state=RequestState.AWAITING_APPROVAL if i % 2 else RequestState.APPROVED,
            created_at=now,
        )
        for i in range(count)
    ]
    created = ServiceRequest.objects.bulk_create(batch, batch_size=2000)
    Approval.objects.bulk_create(
        [
            Approval(
                request=r,
                position=1,
                approver_kind="line_manager",
                label="",
                approver=org.manager.user,
                status=ApprovalStatus.PENDING
                if r.state == RequestState.AWAITING_APPROVAL
                else ApprovalStatus.APPROVED,
                activated_at=now,
            )
            for r in created
        ],
        batch_size=2000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(client: Client, url: str, repeat: int) -> tuple[int, float]:
    client.get(url)  # warm caches and templates
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    queries = len(ctx.captured_queries)  # read now: later requests reset the log
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        times.append(time.perf_counter() - start)
    return queries, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--large", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from tests.conftest import Org
        from tests.factories import ApprovalPolicyStepFactory, CatalogueItemFactory

        org = Org()
        item = CatalogueItemFactory(service_owner=org.service_desk)
        ApprovalPolicyStepFactory(item=item, position=1)
        pages = {
            "My requests (requester)": (org.alice.user, "/antraege/"),
            "Approvals for me (manager)": (org.manager.user, "/antraege/genehmigungen/"),
            "Fulfilment queue (IT admin)": (org.admin.user, "/antraege/bearbeitung/"),
            "Catalogue (employee)": (org.alice.user, "/"),
        }
        results = {}
        seed(org, item, args.small)
        for name, (user, url) in pages.items():
            client = Client()
            client.force_login(user)
            results[name] = [measure(client, url, args.repeat)]
        seed(org, item, args.large - args.small)
        for name, (user, url) in pages.items():
            client = Client()
            client.force_login(user)
            results[name].append(measure(client, url, args.repeat))
        print(
            f"| page | queries at {args.small} | queries at {args.large} | "
            f"median ms at {args.small} | median ms at {args.large} | ratio |"
        )
        print("|---|---|---|---|---|---|")
        for name, ((q1, t1), (q2, t2)) in results.items():
            print(f"| {name} | {q1} | {q2} | {t1 * 1000:.1f} | {t2 * 1000:.1f} | {t2 / t1:.2f} |")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
