"""Benchmark: the segregation-of-duties scan and report on a sizeable dataset.

Creates a throwaway PostgreSQL test database with ``--people`` employees holding
``--per-person`` entitlements each among 60 services (some adding to directory groups,
nested two levels), 20 rules (pairs, "any of"/"all of" sets, rules over groups), then
times the full scan and one person's rescan, and prints EXPLAIN (ANALYZE, BUFFERS) of the
report's page query and its count, and of the candidate query of a rule.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/itportal \
        .venv/bin/python bench/bench_sod.py [--people 20000] [--per-person 6] [--findings N]

``--findings N`` adds synthetic open findings (rules × people not found by the scan) until N
are open, for the report's plans at tens of thousands of findings without seeding the
entitlements behind them (the report reads only the findings).
"""

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402


def seed(org, people: int, per_person: int):
    from django.contrib.auth.models import User
    from django.utils import timezone

    from catalogue.models import Employee
    from governance import sod_services
    from governance.models import GroupNesting, SodMatch
    from provisioning.choices import ActionKind
    from provisioning.models import Entitlement, ProvisioningAction
    from requests_app.choices import RequestState
    from requests_app.models import ServiceRequest
    from tests.factories import CatalogueItemFactory

    rng = random.Random(15)  # noqa: S311 (test data, not secrets)
    items = [
        CatalogueItemFactory(service_owner=org.service_desk, name=f"Leistung {n}", slug=f"l{n}")
        for n in range(60)
    ]
    groups = [f"cn=g{n},ou=groups,dc=musterstadt,dc=example" for n in range(12)]
    for n, item in enumerate(items[:24]):
        ProvisioningAction.objects.create(
            item=item, kind=ActionKind.ADD_TO_GROUP, target=groups[n % 12]
        )
    # g0 ⊃ g1 ⊃ g2, g3 ⊃ g4
    for parent, child in ((0, 1), (1, 2), (3, 4)):
        GroupNesting.objects.create(parent_dn=groups[parent], child_dn=groups[child])
    users = User.objects.bulk_create(
        [User(username=f"p{n}", first_name="P", last_name=str(n)) for n in range(people)],
        batch_size=5000,
    )
    employees = Employee.objects.bulk_create(
        [
            Employee(user=u, personnel_number=f"P{n:07d}", department=org.department)
            for n, u in enumerate(users)
        ],
        batch_size=5000,
    )
    now = timezone.now()
    pairs = [(e, rng.sample(items, per_person)) for e in employees]
    requests = ServiceRequest.objects.bulk_create(
        [
            ServiceRequest(
                requester=e.user,
                beneficiary=e,
                item=i,
                item_version=i.version,
                item_snapshot={},
                answers={},
                cost_centre=org.cost_centre,
                price_once=i.price_once,
                price_monthly=i.price_monthly,
                fulfilment_group=i.service_owner,
                state=RequestState.FULFILLED,
                created_at=now,
            )
            for e, chosen in pairs
            for i in chosen
        ],
        batch_size=5000,
    )
    Entitlement.objects.bulk_create(
        [Entitlement(holder_id=r.beneficiary_id, item_id=r.item_id, request=r) for r in requests],
        batch_size=5000,
    )
    for n in range(12):  # pairs
        sod_services.sod_rule_create(
            name=f"Paar {n}", reason="x", first=[items[24 + n]], second=[items[36 + n]]
        )
    for n in range(4):  # sets
        sod_services.sod_rule_create(
            name=f"Menge {n}", reason="x", first=items[48 + 3 * n : 51 + 3 * n],
            first_match=SodMatch.ALL if n % 2 else SodMatch.ANY, second=[items[n]],
        )  # fmt: skip
    for n in range(4):  # groups, nested
        sod_services.sod_rule_create(
            name=f"Gruppe {n}", reason="x", first=[groups[0 if n < 2 else 3]],
            second=[items[30 + n]],
        )  # fmt: skip
    connection.cursor().execute("ANALYZE")


def add_findings(total: int) -> int:
    """Fill up to ``total`` open findings with synthetic ones (rule, person) the scan did not
    find; returns how many were added."""
    from catalogue.models import Employee
    from governance.models import SodFinding, SodRule

    have = set(
        SodFinding.objects.filter(resolved_at__isnull=True).values_list("rule_id", "holder_id")
    )
    wanted = total - len(have)
    rules = list(SodRule.objects.values_list("pk", "version"))
    rows = []
    for holder_id in Employee.objects.order_by("pk").values_list("pk", flat=True):
        for rule_id, version in rules:
            if len(rows) >= wanted:
                break
            if (rule_id, holder_id) not in have:
                rows.append(
                    SodFinding(rule_id=rule_id, rule_version=version, holder_id=holder_id,
                               evidence={"first": [], "second": []})
                )  # fmt: skip
    SodFinding.objects.bulk_create(rows, batch_size=5000)
    connection.cursor().execute("ANALYZE")
    return len(rows)


def report_plans(label: str) -> None:
    """EXPLAIN ANALYZE of the report as the page runs it: its default order (rule, then
    person by name), page 2 of 25 rows, and its count; and the CSV's order."""
    from governance import selectors
    from governance.tables import ConflictTable

    table = ConflictTable(selectors.open_findings())
    order = [key for column in table.Meta.order_by for key in table.columns[column].order_by]
    page = selectors.open_findings().order_by(*order)[25:50]
    sql, params = page.query.sql_with_params()
    print(f"\n-- {label}: report page (rows 26-50, order {order}):\n" + explain(sql, params))
    # The paginator's count, as Django sends it (no order, unused annotations stripped).
    with CaptureQueriesContext(connection) as queries:
        selectors.open_findings().count()
    print(f"\n-- {label}: report count:\n" + explain(queries[0]["sql"], None))


def explain(sql: str, params) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--per-person", type=int, default=6)
    parser.add_argument("--findings", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the database for EXPLAIN")
    args = parser.parse_args()

    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        from governance import sod, sod_services
        from governance.models import SodFinding
        from provisioning.models import Entitlement
        from tests.conftest import Org

        org = Org()
        started = time.perf_counter()
        seed(org, args.people, args.per_person)
        print(f"seeded {args.people} people, {Entitlement.objects.count()} entitlements "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        started = time.perf_counter()
        counts = sod_services.sod_scan()
        print(f"full scan: {counts} in {time.perf_counter() - started:.1f} s")
        started = time.perf_counter()
        again = sod_services.sod_scan()
        print(f"second full scan (nothing new): {again} in {time.perf_counter() - started:.1f} s")
        someone = SodFinding.objects.first().holder_id
        started = time.perf_counter()
        sod_services.sod_scan(holder_ids=[someone])
        print(f"one person's rescan: {(time.perf_counter() - started) * 1000:.0f} ms")
        connection.cursor().execute("ANALYZE")
        if args.findings:
            added = add_findings(args.findings)
            total = SodFinding.objects.filter(resolved_at__isnull=True).count()
            print(f"added {added} synthetic findings: {total} open")
        report_plans("with the migrations' indexes")
        # The baseline in the same run: the report without the index on the rules' names.
        connection.cursor().execute("DROP INDEX sod_rule_name")
        connection.cursor().execute("ANALYZE")
        report_plans("without sod_rule_name (before)")
        rules = sod.active_rules()
        context = sod.load_context(rules)
        started = time.perf_counter()
        for rule in rules:
            sod.candidates(rule, context)
        print(f"\ncandidates of all {len(rules)} rules: {time.perf_counter() - started:.2f} s")
        from provisioning.choices import EntitlementState

        query = (
            Entitlement.objects.filter(item__in=[1, 2, 3], state=EntitlementState.ACTIVE)
            .order_by()
            .values_list("holder_id", flat=True)
            .distinct()
        )
        sql, params = query.query.sql_with_params()
        print("\n-- candidates of one side (three services):\n" + explain(sql, params))
    finally:
        if args.keep:
            print(f"kept database {connection.settings_dict['NAME']}")
        else:
            connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
