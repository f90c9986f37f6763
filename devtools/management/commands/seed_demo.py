"""Load demo data for "Stadt Musterstadt": organisation, people, logins and a service catalogue.

Idempotent: every object is keyed on a natural key (username, personnel number, code, slug,
(item, key), (item, position)), so running the command again updates in place and leaves the
same data. Names come from a seeded ``random.Random``, so every run produces the same people.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from itertools import count

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import check_password, make_password
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import F

from catalogue.choices import ApproverKind, Audience, FieldType, FulfilmentKind
from catalogue.models import (
    ApprovalPolicyStep,
    Bundle,
    BundleItem,
    CatalogueItem,
    Category,
    CostCentre,
    Department,
    Employee,
    FormField,
)
from itportal import roles

CITY = "Stadt Musterstadt"
MAIL_DOMAIN = "musterstadt.example"
DEMO_PASSWORD = "demo"  # noqa: S105 - the documented demo password, demo data only
SEED = 20240917  # any fixed value; changing it renames every generated person

# --- groups ------------------------------------------------------------------------------

G_SERVICE_DESK = "IT-Service Desk"
G_NETWORK = "IT-Netzwerk"
G_WORKPLACE = "IT-Arbeitsplatz"
G_APPLICATIONS = "IT-Fachverfahren"
G_SECURITY = "IT-Sicherheit"
G_LICENCES = "Lizenzmanagement"
G_DPO = "Datenschutz"
G_FINANCE = "Verfahrensverantwortung Finanzwesen"

SERVICE_OWNER_GROUPS = (
    G_SERVICE_DESK,
    G_NETWORK,
    G_WORKPLACE,
    G_APPLICATIONS,
    G_SECURITY,
    G_LICENCES,
)


# --- names -------------------------------------------------------------------------------

FEMALE_NAMES = (
    "Andrea", "Angelika", "Anja", "Annika", "Ayşe", "Birgit", "Carina", "Christina", "Claudia",
    "Daniela", "Elif", "Elke", "Franziska", "Gabriele", "Heike", "Ines", "Jana", "Jessica",
    "Johanna", "Julia", "Karin", "Katharina", "Kathrin", "Kerstin", "Laura", "Lea", "Lena",
    "Lisa", "Manuela", "Maria", "Marie", "Martina", "Melanie", "Miriam", "Monika", "Nadine",
    "Natalia", "Nicole", "Petra", "Renate", "Sabine", "Sandra", "Sarah", "Silke", "Simone",
    "Sophie", "Stefanie", "Susanne", "Tanja", "Ulrike", "Ute", "Vanessa", "Verena", "Yvonne",
)  # fmt: skip
MALE_NAMES = (
    "Alexander", "Andreas", "Benjamin", "Bernd", "Christian", "Daniel", "David", "Dennis",
    "Dirk", "Emre", "Fabian", "Felix", "Florian", "Frank", "Hans-Peter", "Holger", "Jan",
    "Jens", "Jörg", "Jürgen", "Kai", "Karl-Heinz", "Klaus", "Kevin", "Lukas", "Marc", "Marco",
    "Martin", "Matthias", "Maximilian", "Mehmet", "Michael", "Niklas", "Oliver", "Patrick",
    "Paul", "Peter", "Philipp", "Ralf", "René", "Sebastian", "Stefan", "Sven", "Timo", "Tobias",
    "Torsten", "Uwe", "Volker", "Wolfgang",
)  # fmt: skip
LAST_NAMES = (
    "Albrecht", "Arnold", "Bauer", "Baumann", "Beck", "Berger", "Bergmann", "Böhm", "Brandt",
    "Braun", "Busch", "Dietrich", "Engel", "Fischer", "Franke", "Friedrich", "Fuchs", "Graf",
    "Groß", "Günther", "Haas", "Hahn", "Hartmann", "Heinrich", "Herrmann", "Hoffmann", "Hofmann",
    "Horn", "Huber", "Jäger", "Jung", "Kaiser", "Kaya", "Keller", "Klein", "Koch", "Köhler",
    "König", "Kowalski", "Kraus", "Krause", "Krämer", "Kuhn", "Lang", "Lange", "Lehmann",
    "Lorenz", "Ludwig", "Maier", "Martin", "Mayer", "Meier", "Meyer", "Möller", "Müller",
    "Nowak", "Otto", "Peters", "Pfeiffer", "Pohl", "Roth", "Sauer", "Schäfer", "Schmid",
    "Schmitt", "Schmitz", "Schneider", "Scholz", "Schreiber", "Schröder", "Schubert", "Schulte",
    "Schulz", "Schulze", "Schumacher", "Schuster", "Schwarz", "Seidel", "Simon", "Sommer",
    "Stein", "Vogt", "Voigt", "Walter", "Weber", "Weiß", "Werner", "Winkler", "Winter", "Wolf",
    "Wolff", "Yılmaz", "Ziegler", "Zimmermann",
)  # fmt: skip

# --- organisation ------------------------------------------------------------------------
#
# Dezernate are departments too: their heads (the mayor and the Beigeordnete) form the
# Verwaltungsvorstand at the top of the manager chain. Job titles use "{male|female}".


@dataclass(frozen=True)
class Team:
    name: str
    staff_title: str
    size: int  # generated staff, not counting the leader or fixed demo people
    leader_title: str | None = ""  # "" = "Sachgebietsleitung <name>"; None = no leader
    groups: tuple[str, ...] = ()
    cost_centre: str | None = None  # code of a cost centre other than the department's


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    head_title: str
    parent: str | None
    teams: tuple[Team, ...] = ()


DEZERNATE = (
    Unit(
        "D1",
        "Dezernat I – Verwaltungsführung",
        "Oberbürgermeister{|in}",
        None,
        (Team("OB-Büro", "Referent{|in}", 2, "Büroleitung OB-Büro"),),
    ),
    Unit(
        "D2",
        "Dezernat II – Finanzen, Sicherheit und Ordnung",
        "Erste{r|} Beigeordnete{r|} und Stadtkämmerer{|in}",
        "D1",
        (Team("Dezernatsbüro II", "Dezernatsreferent{|in}", 1, None),),
    ),
    Unit(
        "D3",
        "Dezernat III – Bildung, Jugend und Soziales",
        "Beigeordnete{r|} für Bildung, Jugend und Soziales",
        "D1",
        (Team("Dezernatsbüro III", "Dezernatsreferent{|in}", 1, None),),
    ),
    Unit(
        "D4",
        "Dezernat IV – Planen und Bauen",
        "Technische{r|} Beigeordnete{r|}",
        "D1",
        (Team("Dezernatsbüro IV", "Dezernatsreferent{|in}", 1, None),),
    ),
)

AEMTER = (
    Unit("10", "Hauptamt", "Leiter{|in} des Hauptamts", "D1", (
        Team("Personal", "Sachbearbeiter{|in} Personal", 6),
        Team("Organisation", "Organisationsberater{|in}", 3),
        Team("Zentrale Dienste", "Verwaltungsfachangestellte{r|}", 4),
        Team("Datenschutz", "Sachbearbeiter{|in} Datenschutz", 1,
             "Behördliche{r|} Datenschutzbeauftragte{r|}", (G_DPO,)),
    )),
    Unit("18", "Amt für Informationstechnik", "Leiter{|in} des Amts für Informationstechnik",
         "D1", (
        Team("IT-Service Desk", "Mitarbeiter{|in} IT-Service Desk", 4, "", (G_SERVICE_DESK,)),
        Team("Netz und Infrastruktur", "Netzwerkadministrator{|in}", 3, "", (G_NETWORK,),
             "KS-18-110"),
        Team("Arbeitsplatz und Endgeräte", "Systembetreuer{|in} Arbeitsplatz", 3, "",
             (G_WORKPLACE,)),
        Team("Fachverfahren", "Fachverfahrensbetreuer{|in}", 3, "", (G_APPLICATIONS,)),
        Team("Informationssicherheit", "Sachbearbeiter{|in} Informationssicherheit", 1,
             "Informationssicherheitsbeauftragte{r|}", (G_SECURITY,)),
        Team("IT-Steuerung", "Sachbearbeiter{|in} Lizenzmanagement", 2, "", (G_LICENCES,)),
    )),
    Unit("20", "Kämmerei", "Leiter{|in} der Kämmerei", "D2", (
        Team("Haushalt und Controlling", "Sachbearbeiter{|in} Haushalt", 4),
        Team("Finanzbuchhaltung", "Sachbearbeiter{|in} Finanzbuchhaltung", 4, "", (G_FINANCE,)),
        Team("Stadtkasse", "Sachbearbeiter{|in} Stadtkasse", 3),
        Team("Steuern und Abgaben", "Sachbearbeiter{|in} Steuern", 4),
    )),
    Unit("32", "Ordnungsamt", "Leiter{|in} des Ordnungsamts", "D2", (
        Team("Allgemeine Ordnungsangelegenheiten", "Sachbearbeiter{|in} Ordnungsrecht", 4),
        Team("Gewerbe", "Sachbearbeiter{|in} Gewerbeangelegenheiten", 3),
        Team("Verkehrsüberwachung", "Verkehrsüberwacher{|in}", 7),
    )),
    Unit("33", "Bürgeramt", "Leiter{|in} des Bürgeramts", "D2", (
        Team("Meldewesen", "Sachbearbeiter{|in} Meldewesen", 3),
        Team("Pass- und Ausweiswesen", "Sachbearbeiter{|in} Pass- und Ausweiswesen", 4),
        Team("Bürgerservice", "Mitarbeiter{|in} Bürgerservice", 5),
    )),
    Unit("34", "Standesamt", "Leiter{|in} des Standesamts", "D2", (
        Team("Personenstandswesen", "Standesbeamt{er|in}", 4),
        Team("Urkunden und Namensrecht", "Verwaltungsfachangestellte{r|}", 2),
    )),
    Unit("40", "Schulamt", "Leiter{|in} des Schulamts", "D3", (
        Team("Schulverwaltung", "Sachbearbeiter{|in} Schulverwaltung", 5),
        Team("Schul-IT und Medienentwicklung", "Sachbearbeiter{|in} Schul-IT", 2,
             cost_centre="KS-40-110"),
    )),
    Unit("50", "Sozialamt", "Leiter{|in} des Sozialamts", "D3", (
        Team("Hilfe zum Lebensunterhalt", "Sachbearbeiter{|in} SGB XII", 6),
        Team("Grundsicherung", "Sachbearbeiter{|in} Grundsicherung", 4),
        Team("Wohngeld", "Sachbearbeiter{|in} Wohngeld", 3),
    )),
    Unit("51", "Jugendamt", "Leiter{|in} des Jugendamts", "D3", (
        Team("Allgemeiner Sozialer Dienst", "Sozialarbeiter{|in}", 8),
        Team("Kindertagesbetreuung", "Sachbearbeiter{|in} Kindertagesbetreuung", 3,
             cost_centre="KS-51-110"),
        Team("Wirtschaftliche Jugendhilfe", "Sachbearbeiter{|in} Wirtschaftliche Jugendhilfe",
             3),
    )),
    Unit("61", "Stadtplanungsamt", "Leiter{|in} des Stadtplanungsamts", "D4", (
        Team("Bauleitplanung", "Stadtplaner{|in}", 5),
        Team("Verkehrsplanung", "Verkehrsplaner{|in}", 2),
        Team("Geoinformation", "Sachbearbeiter{|in} Geoinformation", 2),
    )),
    Unit("63", "Bauordnungsamt", "Leiter{|in} des Bauordnungsamts", "D4", (
        Team("Baugenehmigungen", "Sachbearbeiter{|in} Baugenehmigung", 5),
        Team("Bauaufsicht", "Bauingenieur{|in} Bauaufsicht", 3),
    )),
    Unit("67", "Grünflächenamt", "Leiter{|in} des Grünflächenamts", "D4", (
        Team("Grünplanung", "Landschaftsarchitekt{|in}", 2),
        Team("Baumkontrolle", "Baumkontrolleur{|in}", 3),
        Team("Friedhofsverwaltung", "Sachbearbeiter{|in} Friedhofsverwaltung", 2),
    )),
)  # fmt: skip

# Cost centres besides one per department: (code, name, department code, team that owns it).
EXTRA_COST_CENTRES = (
    ("KS-18-110", "Zentrale IT-Infrastruktur", "18", "Netz und Infrastruktur"),
    ("KS-40-110", "Schul-IT", "40", "Schul-IT und Medienentwicklung"),
    ("KS-51-110", "Kindertageseinrichtungen", "51", "Kindertagesbetreuung"),
)


@dataclass(frozen=True)
class Login:
    """A fixed demo login; ``team=None`` reports to the department head."""

    username: str
    personnel_number: str
    first_name: str
    last_name: str
    job_title: str
    department: str
    team: str | None
    leads_team: bool = False
    groups: tuple[str, ...] = ()
    is_staff: bool = False
    is_superuser: bool = False
    email: str = ""


LOGINS = (
    Login("vorgesetzter", "m10017", "Thomas", "Becker", "Sachgebietsleitung Meldewesen",
          "33", "Meldewesen", leads_team=True),
    Login("mitarbeiterin", "m10042", "Anna", "Schmidt", "Sachbearbeiterin Meldewesen",
          "33", "Meldewesen"),
    Login("kollege", "m10043", "Jonas", "Wagner", "Sachbearbeiter Meldewesen",
          "33", "Meldewesen"),
    Login("itadmin", "m10007", "Markus", "Richter", "IT-Servicemanager Servicekatalog",
          "18", "IT-Steuerung", groups=(roles.IT_ADMIN, *SERVICE_OWNER_GROUPS), is_staff=True),
    Login("controlling", "m10008", "Claudia", "Neumann", "IT-Controllerin",
          "18", "IT-Steuerung", groups=(roles.CONTROLLING,)),
    Login("admin", "m10001", "IT", "Notfallzugang", "Notfallzugang (Break-Glass-Konto)",
          "18", None, is_staff=True, is_superuser=True,
          email=f"it-notfallzugang@{MAIL_DOMAIN}"),
)  # fmt: skip


@dataclass
class Person:
    username: str
    personnel_number: str
    first_name: str
    last_name: str
    email: str
    job_title: str
    department: str
    manager: str | None  # personnel number
    cost_centre: str | None = None
    groups: tuple[str, ...] = ()
    is_staff: bool = False
    is_superuser: bool = False


def gendered(template: str, female: bool) -> str:
    """Resolve "{male|female}" alternatives in a job title."""
    return re.sub(r"\{([^|}]*)\|([^}]*)\}", lambda m: m.group(2 if female else 1), template)


def mail_local_part(first_name: str, last_name: str) -> str:
    """firstname.lastname in ASCII, with German transliteration of umlauts."""
    text = f"{first_name}.{last_name}".lower()
    for umlaut, ascii_form in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, ascii_form)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9.-]+", "-", text)


def plan_people() -> tuple[list[Person], dict[str, str], dict[tuple[str, str], str]]:
    """Everyone, in manager-first order; plus department heads and team leaders by number."""
    rng = random.Random(SEED)
    numbers = count(10100)  # fixed logins use m10001-m10099
    taken = {(login.first_name, login.last_name) for login in LOGINS}
    people: list[Person] = []
    heads: dict[str, str] = {}
    leaders: dict[tuple[str, str], str] = {}

    def add(title: str, department: str, manager: str | None, team: Team | None = None) -> Person:
        female = rng.random() < 0.6  # city administrations employ more women than men
        while True:
            first = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
            last = rng.choice(LAST_NAMES)
            if (first, last) not in taken:
                taken.add((first, last))
                break
        number = f"m{next(numbers)}"
        person = Person(
            username=number,
            personnel_number=number,
            first_name=first,
            last_name=last,
            email=f"{mail_local_part(first, last)}@{MAIL_DOMAIN}",
            job_title=gendered(title, female),
            department=department,
            manager=manager,
            cost_centre=team.cost_centre if team else None,
            groups=team.groups if team else (),
        )
        people.append(person)
        return person

    def add_login(login: Login, manager: str | None, team: Team | None) -> Person:
        person = Person(
            username=login.username,
            personnel_number=login.personnel_number,
            first_name=login.first_name,
            last_name=login.last_name,
            email=login.email
            or f"{mail_local_part(login.first_name, login.last_name)}@{MAIL_DOMAIN}",
            job_title=login.job_title,
            department=login.department,
            manager=manager,
            cost_centre=team.cost_centre if team else None,
            groups=login.groups,
            is_staff=login.is_staff,
            is_superuser=login.is_superuser,
        )
        people.append(person)
        return person

    for unit in (*DEZERNATE, *AEMTER):
        head = add(unit.head_title, unit.code, heads.get(unit.parent) if unit.parent else None)
        heads[unit.code] = head.personnel_number
        for team in unit.teams:
            fixed = [
                login
                for login in LOGINS
                if (login.department, login.team) == (unit.code, team.name)
            ]
            leader_login = next((login for login in fixed if login.leads_team), None)
            if leader_login:
                leader = add_login(leader_login, head.personnel_number, team)
            elif team.leader_title is None:
                leader = head
            else:
                title = team.leader_title or f"Sachgebietsleitung {team.name}"
                leader = add(title, unit.code, head.personnel_number, team)
            leaders[(unit.code, team.name)] = leader.personnel_number
            for login in fixed:
                if not login.leads_team:
                    add_login(login, leader.personnel_number, team)
            for _ in range(team.size):
                add(team.staff_title, unit.code, leader.personnel_number, team)
        for login in LOGINS:
            if login.department == unit.code and login.team is None:
                add_login(login, head.personnel_number, None)
    return people, heads, leaders


# --- catalogue ---------------------------------------------------------------------------

CATEGORIES = (
    ("benutzerkonten", "Benutzerkonten",
     "Anlegen, Verlängern und Entsperren von Benutzerkonten, auch für Gäste."),
    ("zugriffe", "Zugriff auf Netzlaufwerke und Gruppen",
     "Berechtigungen auf Gruppenlaufwerke und Berechtigungsgruppen."),
    ("fernzugriff", "VPN und Fernzugriff",
     "Sicherer Zugang zum Verwaltungsnetz von unterwegs und aus dem Homeoffice."),
    ("e-mail", "E-Mail und Verteiler",
     "Funktionspostfächer, Verteilerlisten und mehr Speicherplatz im Postfach."),
    ("software", "Softwarelizenzen",
     "Lizenzen für Standard- und Spezialsoftware über das Lizenzmanagement."),
    ("mobile-geraete", "Mobile Geräte",
     "Diensthandys, Tablets und SIM-Karten, verwaltet über das Mobile-Device-Management."),
    ("hardware", "Hardware",
     "Notebooks, Monitore und Zubehör für den Arbeitsplatz."),
    ("fachverfahren", "Fachverfahren",
     "Zugänge zu den Fachanwendungen der Ämter."),
)  # fmt: skip


def fld(key, label, field_type, help_text="", *, required=True, choices=(), pattern="",
        min_value=None, max_value=None, max_length=None, earliest_days=None, latest_days=None,
        needed_from=False) -> dict:  # fmt: skip
    return {
        "earliest_days": earliest_days,
        "latest_days": latest_days,
        "needed_from": needed_from,
        "key": key,
        "label": label,
        "field_type": field_type,
        "help_text": help_text,
        "required": required,
        "choices": "\n".join(choices),
        "pattern": pattern,
        "min_value": None if min_value is None else Decimal(min_value),
        "max_value": None if max_value is None else Decimal(max_value),
        "max_length": max_length,
    }


def room(required: bool = True) -> dict:
    return fld(
        "raum",
        "Raum",
        FieldType.TEXT,
        "Gebäude, Etage und Raumnummer, z. B. „A 2.017“.",
        required=required,
        pattern=r"[A-Z] ?[0-9]\.[0-9]{3}",
        max_length=10,
    )


def reason(label: str = "Begründung", help_text: str = "", required: bool = True) -> dict:
    return fld("begruendung", label, FieldType.LONG_TEXT, help_text, required=required,
               max_length=2000)  # fmt: skip


def step(kind: str, label: str, group: str | None = None, person_field: str = "") -> dict:
    return {"approver_kind": kind, "label": label, "group": group, "person_field_key": person_field}


LINE_MANAGER = step(ApproverKind.LINE_MANAGER, "Vorgesetzte(r)")
CC_OWNER = step(ApproverKind.COST_CENTRE_OWNER, "Kostenstellenverantwortliche(r)")
SECURITY = step(ApproverKind.GROUP, "IT-Sicherheit", G_SECURITY)
DPO = step(ApproverKind.GROUP, "Datenschutzbeauftragte(r)", G_DPO)
FINANCE = step(ApproverKind.GROUP, "Verfahrensverantwortung Finanzwesen", G_FINANCE)

T, LT, NUM, DATE = FieldType.TEXT, FieldType.LONG_TEXT, FieldType.NUMBER, FieldType.DATE
CHOICE, MULTI, YES_NO, PERSON = (
    FieldType.CHOICE,
    FieldType.MULTIPLE_CHOICE,
    FieldType.YES_NO,
    FieldType.PERSON,
)
AUTOMATED = FulfilmentKind.AUTOMATED


def item(slug, name, category, owner, summary, description, *, once="0", monthly="0",
         fields=(), steps=(), kind=FulfilmentKind.MANUAL, departments=(), groups=(),
         for_others=True, active=True, pool=None) -> dict:  # fmt: skip
    return {
        "slug": slug,
        "name": name,
        "category": category,
        "service_owner": owner,
        "summary": summary,
        "description": description.strip(),
        "price_once": Decimal(once),
        "price_monthly": Decimal(monthly),
        "fields": fields,
        "steps": steps,
        "fulfilment_kind": kind,
        "departments": departments,
        "groups": groups,
        "orderable_for_others": for_others,
        "is_active": active,
        "licence_pool_size": pool,
    }


ITEMS = (
    # --- Benutzerkonten ---
    item(
        "benutzerkonto-anlegen", "Benutzerkonto anlegen", "benutzerkonten", G_SERVICE_DESK,
        "Windows-Anmeldung, E-Mail-Postfach und Basisberechtigungen für neue Beschäftigte.",
        """
Für neue Beschäftigte richtet der IT-Service Desk das **Benutzerkonto** mit E-Mail-Postfach,
persönlichem Laufwerk und den Standardberechtigungen des Amtes ein.

### Bitte beachten
- Bestellen Sie spätestens **10 Arbeitstage** vor dem ersten Arbeitstag.
- Die Zugangsdaten erhält die Vorgesetzte bzw. der Vorgesetzte im verschlossenen Umschlag.
- Zugänge zu Fachverfahren bestellen Sie bitte zusätzlich unter *Fachverfahren*.
""",
        once="45.00",
        fields=(
            fld("vorname", "Vorname", T, max_length=60),
            fld("nachname", "Nachname", T, max_length=60),
            # The account is set up for the first working day, not before (issue 11).
            fld("eintrittsdatum", "Erster Arbeitstag", DATE, needed_from=True),
            fld("befristet_bis", "Befristet bis", DATE,
                "Nur bei befristeten Arbeitsverträgen, Praktika und Ausbildung.", required=False),
            fld("beschaeftigungsart", "Beschäftigungsart", CHOICE, choices=(
                "Tarifbeschäftigte(r)", "Beamtin/Beamter", "Auszubildende(r)",
                "Praktikant(in)", "Externe(r) Mitarbeiter(in)")),
            fld("vorlage", "Berechtigungen wie", PERSON,
                "Kollegin oder Kollege mit vergleichbaren Aufgaben; deren Gruppen dienen "
                "als Vorlage.", required=False),
            room(),
        ),
        steps=(CC_OWNER,),
    ),
    item(
        "konto-verlaengern", "Befristetes Benutzerkonto verlängern", "benutzerkonten",
        G_SERVICE_DESK,
        "Verlängert ein befristetes Konto, z. B. bei Vertragsverlängerung.",
        """
Befristete Konten werden am Ablaufdatum automatisch **gesperrt**. Beantragen Sie die
Verlängerung rechtzeitig, sobald die Vertragsverlängerung feststeht.
""",
        fields=(
            fld("neues_enddatum", "Neues Enddatum", DATE),
            reason("Anlass", "z. B. Vertragsverlängerung, Verlängerung des Praktikums."),
        ),
        steps=(LINE_MANAGER,),
    ),
    item(
        "konto-entsperren", "Konto entsperren / Kennwort zurücksetzen", "benutzerkonten",
        G_SERVICE_DESK,
        "Hilfe bei gesperrtem Konto oder vergessenem Kennwort.",
        """
Nach fünf falschen Anmeldeversuchen wird ein Konto gesperrt. Der IT-Service Desk ruft die
betroffene Person zurück und **prüft ihre Identität**, bevor ein neues Startkennwort vergeben
wird.

Dringend? Telefon **-4711** (Mo–Fr 7:30–16:00 Uhr).
""",
        fields=(
            fld("rueckrufnummer", "Rückrufnummer", T,
                "Telefonnummer, unter der wir die betroffene Person erreichen.",
                pattern=r"[0-9 +/()-]{3,25}", max_length=25),
            fld("anliegen", "Anliegen", CHOICE,
                choices=("Konto entsperren", "Kennwort zurücksetzen", "Beides")),
        ),
    ),
    item(
        "gastkonto", "Gastkonto für externe Personen", "benutzerkonten", G_SERVICE_DESK,
        "Befristete Konten für Gäste, Schulungsteilnehmende und Dienstleister.",
        """
Gastkonten erlauben den Zugang zum **Gäste-WLAN** und, wenn nötig, zu Schulungsrechnern.
Sie sind höchstens **30 Tage** gültig und haben keinen Zugriff auf Fachverfahren.
""",
        fields=(
            fld("anzahl", "Anzahl Gastkonten", NUM, "Für Schulungen bis zu 30 Konten.",
                min_value=1, max_value=30),
            fld("organisation", "Firma oder Organisation der Gäste", T, max_length=120),
            fld("gueltig_ab", "Gültig ab", DATE),
            fld("gueltig_bis", "Gültig bis", DATE, "Höchstens 30 Tage nach Beginn."),
            fld("zugaenge", "Benötigte Zugänge", MULTI,
                choices=("Gäste-WLAN", "Schulungsrechner", "Drucken im Schulungsraum")),
            reason("Zweck"),
        ),
        steps=(LINE_MANAGER, SECURITY),
    ),
    item(
        "admin-zweitkonto", "Administratives Zweitkonto", "benutzerkonten", G_SECURITY,
        "Persönliches Konto mit erhöhten Rechten für Administrationsaufgaben.",
        """
Administrative Tätigkeiten dürfen **nicht** mit dem normalen Arbeitskonto erledigt werden
(BSI IT-Grundschutz, ORP.4). Das Zweitkonto hat kein Postfach und keinen Internetzugang.
""",
        fields=(
            fld("systeme", "Systembereiche", MULTI, choices=(
                "Clients", "Server", "Active Directory", "Netzwerkkomponenten",
                "Fachverfahren-Server")),
            reason(),
        ),
        steps=(LINE_MANAGER, SECURITY),
        groups=(G_SERVICE_DESK, G_NETWORK, G_WORKPLACE, G_APPLICATIONS, G_SECURITY),
        for_others=False,
    ),
    item(
        "sonstige-anfrage", "Sonstige Anfrage", "benutzerkonten", G_SERVICE_DESK,
        "Für alles, was der Katalog nicht anbietet: beschreiben Sie, was Sie brauchen.",
        """
Der IT-Service Desk prüft Ihre Anfrage und meldet sich, oder er bestellt die passende
Leistung für Sie.
""",
        fields=(reason("Was brauchen Sie?", "Beschreiben Sie Ihr Anliegen in eigenen Worten."),),
    ),
    # --- Zugriff auf Netzlaufwerke und Gruppen ---
    item(
        "zugriff-netzlaufwerk", "Zugriff auf Netzlaufwerk", "zugriffe", G_SERVICE_DESK,
        "Lese- oder Schreibrechte auf einen Ordner eines Gruppenlaufwerks.",
        """
Über diese Leistung erhalten Sie Zugriff auf einen Ordner eines Gruppenlaufwerks.
Über den Zugriff entscheidet die **Dateneigentümerin bzw. der Dateneigentümer** des Ordners,
meist die Sachgebietsleitung.

| Zugriffsart | Bedeutung |
|---|---|
| Lesen | Dateien öffnen und kopieren |
| Lesen und Schreiben | zusätzlich ändern, anlegen, löschen |
""",
        kind=AUTOMATED,
        fields=(
            fld("pfad", "Pfad", T, "z. B. \\\\fs01\\amt33\\Meldewesen",
                pattern=r"\\\\[A-Za-z0-9.-]+\\[^<>:\"|?*]+", max_length=250),
            fld("zugriffsart", "Zugriffsart", CHOICE,
                choices=("Lesen", "Lesen und Schreiben")),
            fld("dateneigentuemer", "Dateneigentümer(in)", PERSON,
                "Die Person, die für die Daten im Ordner verantwortlich ist."),
            fld("befristet_bis", "Befristet bis", DATE, "Leer lassen für unbefristet.",
                required=False),
        ),
        steps=(step(ApproverKind.PERSON_FIELD, "Dateneigentümer(in)",
                    person_field="dateneigentuemer"),),
    ),
    item(
        "berechtigungsgruppe", "Mitgliedschaft in einer Berechtigungsgruppe", "zugriffe",
        G_SERVICE_DESK,
        "Aufnahme in eine Gruppe des Verzeichnisdienstes, z. B. für Fachanwendungen.",
        """
Viele Berechtigungen werden über Gruppen im Verzeichnisdienst vergeben. Den Gruppennamen
erfahren Sie von Ihrer Sachgebietsleitung oder vom IT-Service Desk.
""",
        kind=AUTOMATED,
        fields=(
            fld("gruppenname", "Gruppenname", T, "z. B. GG_Amt33_Meldewesen_RW",
                pattern=r"GG_[A-Za-z0-9_-]+", max_length=64),
            reason(required=False),
        ),
        steps=(LINE_MANAGER,),
    ),
    item(
        "gruppenlaufwerk-einrichten", "Neues Gruppenlaufwerk einrichten", "zugriffe",
        G_NETWORK,
        "Gemeinsamer Speicherbereich für ein Team oder ein Projekt.",
        """
Wir richten einen neuen Ordner auf dem Dateiserver mit eigener Berechtigungsgruppe ein.
Die Daten werden **täglich gesichert**; die Kosten richten sich nach dem Speicherplatz.
""",
        monthly="12.00",
        fields=(
            fld("bezeichnung", "Bezeichnung", T, "Kurzer Name, z. B. „Projekt Innenstadt 2030“.",
                max_length=80),
            fld("speicherplatz_gb", "Speicherplatz (GB)", NUM, min_value=10, max_value=500),
            fld("dateneigentuemer", "Dateneigentümer(in)", PERSON),
            fld("personendaten", "Werden personenbezogene Daten gespeichert?", YES_NO),
            fld("berechtigte", "Weitere berechtigte Personen", LT,
                "Namen oder Personalnummern, eine Person je Zeile.", required=False,
                max_length=2000),
        ),
        steps=(CC_OWNER,),
    ),
    # --- VPN und Fernzugriff ---
    item(
        "vpn-zugang", "VPN-Zugang", "fernzugriff", G_NETWORK,
        "Sicherer Zugang zum Verwaltungsnetz für mobiles Arbeiten und Homeoffice.",
        """
Mit dem VPN-Zugang arbeiten Sie vom **Dienstnotebook** aus wie im Büro. Voraussetzung ist die
Teilnahme am mobilen Arbeiten nach der **Dienstvereinbarung Mobiles Arbeiten**.

### Ablauf
1. Ihre Vorgesetzte bzw. Ihr Vorgesetzter genehmigt den Antrag.
2. Das Portal trägt Sie automatisch in die VPN-Gruppe im Verzeichnis ein; wenige Minuten
   später können Sie sich verbinden.

Private Geräte werden **nicht** angebunden.
""",
        monthly="3.50",
        fields=(
            fld("anlass", "Anlass", CHOICE,
                choices=("Mobiles Arbeiten / Homeoffice", "Rufbereitschaft", "Dienstreisen")),
            fld("geraet", "Gerät", CHOICE, choices=("Dienstnotebook", "Dienst-Tablet")),
            fld("beginn", "Benötigt ab", DATE, needed_from=True),
            # Must be accepted: "Nein" is no answer here (issue 11).
            fld("dienstvereinbarung", "Die Dienstvereinbarung Mobiles Arbeiten ist bekannt.",
                FieldType.ACKNOWLEDGEMENT),
        ),
        steps=(LINE_MANAGER,),
        kind=FulfilmentKind.AUTOMATED,
    ),
    item(
        "fernwartung-dienstleister", "Fernwartungszugang für Dienstleister", "fernzugriff",
        G_NETWORK,
        "Zeitlich begrenzter Zugang externer Firmen zur Wartung von Fachverfahren.",
        """
Externe Dienstleister erhalten Zugang nur über das **Fernwartungsportal** mit
Vier-Augen-Freischaltung. Für Systeme mit personenbezogenen Daten muss ein
**Auftragsverarbeitungsvertrag (AVV)** vorliegen.
""",
        fields=(
            fld("firma", "Firma", T, max_length=120),
            fld("ansprechperson", "Ansprechperson beim Dienstleister", T, max_length=120),
            fld("zielsysteme", "Zielsysteme", LT, "Server oder Anwendungen, die gewartet werden.",
                max_length=1000),
            fld("von", "Zeitraum von", DATE),
            fld("bis", "Zeitraum bis", DATE),
            fld("avv", "Liegt ein Auftragsverarbeitungsvertrag vor?", YES_NO),
        ),
        steps=(LINE_MANAGER, SECURITY, DPO),
    ),
    item(
        "hardware-token", "Hardware-Token für Zwei-Faktor-Anmeldung", "fernzugriff",
        G_SECURITY,
        "Persönlicher Sicherheitsschlüssel (FIDO2) für VPN und Cloud-Dienste.",
        """
Der Sicherheitsschlüssel ersetzt die Authenticator-App, z. B. wenn kein Diensthandy vorhanden
ist. Er ist **persönlich** und darf nicht weitergegeben werden.
""",
        once="42.00",
        fields=(
            fld("anschluss", "Anschluss", CHOICE, choices=("USB-A", "USB-C", "USB-C mit NFC")),
        ),
        for_others=False,
    ),
    # --- E-Mail und Verteiler ---
    item(
        "funktionspostfach", "Funktionspostfach einrichten", "e-mail", G_SERVICE_DESK,
        "Gemeinsames Postfach für ein Team, z. B. buergeramt@musterstadt.example.",
        """
Ein Funktionspostfach wird von mehreren Personen gemeinsam genutzt. Es braucht eine
**verantwortliche Person**, die über Zugriffe entscheidet.
""",
        monthly="2.80",
        fields=(
            fld("adresse", "Gewünschte Adresse (vor dem @)", T, "z. B. „standesamt“",
                pattern=r"[a-z0-9][a-z0-9.-]*", max_length=64),
            fld("anzeigename", "Anzeigename", T, "z. B. „Stadt Musterstadt – Standesamt“",
                max_length=100),
            fld("verantwortlich", "Verantwortliche Person", PERSON),
            fld("berechtigte", "Berechtigte Personen", LT, "Eine Person je Zeile.",
                max_length=2000),
        ),
        steps=(LINE_MANAGER,),
    ),
    item(
        "verteilerliste", "Verteilerliste anlegen oder ändern", "e-mail", G_SERVICE_DESK,
        "E-Mail-Verteiler für Gremien, Projekte und Arbeitskreise.",
        """
Verteilerlisten werden im Verzeichnisdienst gepflegt und stehen danach im **Adressbuch**.
""",
        kind=AUTOMATED,
        fields=(
            fld("aktion", "Aktion", CHOICE,
                choices=("Neu anlegen", "Mitglieder ändern", "Auflösen")),
            fld("name", "Name der Verteilerliste", T, max_length=100),
            fld("mitglieder", "Mitglieder", LT, "Eine Person oder Adresse je Zeile.",
                required=False, max_length=4000),
            fld("extern", "Auch von außen erreichbar", YES_NO, required=False),
        ),
    ),
    item(
        "postfach-erweiterung", "Postfach-Erweiterung", "e-mail", G_SERVICE_DESK,
        "Mehr Speicherplatz für ein persönliches oder Funktionspostfach.",
        """
Das Standardpostfach hat **5 GB**. Bitte archivieren Sie vor der Bestellung abgeschlossene
Vorgänge in der E-Akte.
""",
        monthly="1.90",
        fields=(
            fld("groesse", "Neue Größe", CHOICE, choices=("10 GB", "25 GB", "50 GB")),
            reason(),
        ),
        steps=(CC_OWNER,),
    ),
    item(
        "zugriff-postfach", "Zugriff auf ein anderes Postfach", "e-mail", G_SERVICE_DESK,
        "Vertretungszugriff auf das Postfach einer Kollegin oder eines Kollegen.",
        """
Der Zugriff auf ein persönliches Postfach braucht die **Zustimmung der Inhaberin bzw. des
Inhabers**. Private E-Mails sind vom Zugriff nicht ausgenommen – bitte nur bei Bedarf.
""",
        fields=(
            fld("inhaber", "Inhaber(in) des Postfachs", PERSON),
            fld("rechte", "Rechte", CHOICE,
                choices=("Lesen", "Lesen und Senden im Auftrag", "Senden als")),
            fld("bis", "Befristet bis", DATE, required=False),
        ),
        steps=(step(ApproverKind.PERSON_FIELD, "Inhaber(in) des Postfachs",
                    person_field="inhaber"),),
    ),
    # --- Softwarelizenzen ---
    item(
        "microsoft-visio", "Microsoft Visio", "software", G_LICENCES,
        "Diagramme, Prozessmodelle und Organigramme.",
        """
Visio wird über die Softwareverteilung installiert, sobald die Lizenz zugewiesen ist.
Für einfache Organigramme genügt oft **PowerPoint**.
""",
        monthly="13.70", kind=AUTOMATED, pool=25,
        fields=(reason("Einsatzzweck", required=False),),
        steps=(CC_OWNER,),
    ),
    item(
        "adobe-acrobat-pro", "Adobe Acrobat Pro", "software", G_LICENCES,
        "PDF-Dokumente bearbeiten, Formulare erstellen und barrierefrei prüfen.",
        """
Zum **Lesen und Signieren** von PDF-Dateien ist keine Lizenz nötig; der Standardarbeitsplatz
enthält einen PDF-Reader. Acrobat Pro brauchen Sie zum Bearbeiten, Schwärzen und
für barrierefreie Formulare.
""",
        monthly="17.90", pool=40,
        fields=(
            fld("funktionen", "Benötigte Funktionen", MULTI, choices=(
                "PDF bearbeiten", "Schwärzen", "Formulare erstellen", "Barrierefreiheit prüfen",
                "Dokumente vergleichen")),
        ),
        steps=(CC_OWNER,),
    ),
    item(
        "microsoft-project", "Microsoft Project", "software", G_LICENCES,
        "Projektplanung mit Zeitplänen, Ressourcen und Meilensteinen.",
        """
Für Großprojekte nach dem **Projekthandbuch der Stadt**. Kleinere Vorhaben lassen sich mit
Planner abbilden.
""",
        monthly="28.60",
        fields=(
            fld("projekt", "Projekt", T, max_length=120),
            fld("bis", "Benötigt bis", DATE, "Lizenzen werden nach Projektende entzogen.",
                required=False),
        ),
        steps=(LINE_MANAGER, CC_OWNER),
    ),
    item(
        "autocad-lt", "AutoCAD LT", "software", G_LICENCES,
        "CAD-Software für Lage- und Bauzeichnungen.",
        """
Nur für die technischen Ämter. Schulungen bietet das Stadtplanungsamt intern an.
""",
        monthly="56.00",
        departments=("61", "63", "67"),
        fields=(fld("schulung", "Grundschulung gewünscht", YES_NO, required=False),),
        steps=(CC_OWNER,),
    ),
    item(
        "ocr-software", "Texterkennung (OCR-Software)", "software", G_LICENCES,
        "Eingescannte Dokumente durchsuchbar und bearbeitbar machen.",
        """
Einmalige Kauflizenz für einen Arbeitsplatz. Für die E-Akte werden Scans bereits
zentral mit Texterkennung versehen.
""",
        once="189.00",
        fields=(reason(required=False),),
        steps=(CC_OWNER,),
    ),
    item(
        "fachsoftware", "Sonstige Software oder Fachsoftware", "software", G_LICENCES,
        "Prüfung und Bereitstellung von Software, die nicht im Katalog steht.",
        """
Neue Software wird vor dem Einsatz von **IT-Sicherheit** und **Datenschutz** geprüft.
Rechnen Sie mit **4–6 Wochen**, bei Verarbeitung personenbezogener Daten ggf. länger
(Verzeichnis von Verarbeitungstätigkeiten, ggf. Datenschutz-Folgenabschätzung).
""",
        fields=(
            fld("produkt", "Produkt", T, max_length=120),
            fld("hersteller", "Hersteller", T, max_length=120),
            fld("version", "Version", T, required=False, max_length=30),
            fld("lizenz_vorhanden", "Ist bereits eine Lizenz vorhanden?", YES_NO),
            fld("personendaten", "Werden personenbezogene Daten verarbeitet?", YES_NO),
            reason("Fachliche Begründung"),
        ),
        steps=(LINE_MANAGER, SECURITY, DPO),
    ),
    # --- Mobile Geräte ---
    item(
        "diensthandy", "Diensthandy (Smartphone)", "mobile-geraete", G_WORKPLACE,
        "Smartphone mit Mobilfunkvertrag, verwaltet über das Mobile-Device-Management.",
        """
Das Diensthandy wird mit E-Mail, Kalender und Authenticator-App eingerichtet.
Die private Nutzung ist nach der **Dienstanweisung Mobilfunk** nicht gestattet.

**Lieferzeit:** ca. 10 Arbeitstage.
""",
        once="329.00", monthly="14.90",
        fields=(
            fld("modell", "Modell", CHOICE, choices=(
                "Standardmodell (Android)", "iPhone (nur mit Begründung)")),
            fld("rufnummer_behalten", "Bisherige dienstliche Rufnummer übernehmen", YES_NO,
                required=False),
            reason(),
            room(),
        ),
        steps=(LINE_MANAGER, CC_OWNER),
    ),
    item(
        "tablet", "Dienst-Tablet", "mobile-geraete", G_WORKPLACE,
        "Tablet für Außendienst, Sitzungen und papierlose Gremienarbeit.",
        """
Tablets eignen sich für den **Außendienst** (z. B. Baumkontrolle, Bauaufsicht) und für die
papierlose Sitzungsarbeit mit dem Ratsinformationssystem.
""",
        once="489.00", monthly="4.90",
        fields=(
            fld("mobilfunk", "Mit Mobilfunk (LTE/5G)", YES_NO),
            fld("einsatz", "Einsatzzweck", MULTI, choices=(
                "Außendienst", "Sitzungen / Ratsinformationssystem", "Präsentationen")),
            room(),
        ),
        steps=(LINE_MANAGER, CC_OWNER),
    ),
    item(
        "sim-karte", "SIM-Karte / Datentarif", "mobile-geraete", G_WORKPLACE,
        "Zusätzliche SIM-Karte oder Tarifwechsel für ein vorhandenes Dienstgerät.",
        """
Für Tablets, Notebooks mit Mobilfunkmodul oder als Ersatz-SIM.
""",
        monthly="9.90",
        fields=(
            fld("tarif", "Tarif", CHOICE, choices=(
                "Telefonie + 5 GB", "Nur Daten 10 GB", "Nur Daten 30 GB")),
            fld("geraet", "Gerät", T, "Inventarnummer des Geräts, z. B. „IT-2023-04711“.",
                pattern=r"IT-[0-9]{4}-[0-9]{5}", max_length=13),
        ),
        steps=(LINE_MANAGER,),
    ),
    item(
        "verlust-mobilgeraet", "Verlust oder Defekt eines Mobilgeräts melden", "mobile-geraete",
        G_WORKPLACE,
        "Gerät sperren lassen und Ersatz anfordern.",
        """
Bei **Verlust oder Diebstahl** sperren wir das Gerät sofort per Fernlöschung. Melden Sie den
Verlust zusätzlich der IT-Sicherheit, wenn dienstliche Daten betroffen sein können.
""",
        fields=(
            fld("art", "Was ist passiert?", CHOICE, choices=("Verlust", "Diebstahl", "Defekt")),
            fld("datum", "Wann?", DATE),
            fld("beschreibung", "Beschreibung", LT, max_length=2000),
            fld("anzeige", "Polizeiliche Anzeige erstattet", YES_NO, required=False),
        ),
    ),
    # --- Hardware ---
    item(
        "notebook", "Notebook (Standardarbeitsplatz)", "hardware", G_WORKPLACE,
        "Dienstnotebook mit Standardsoftware, ersetzt den Desktop-PC.",
        """
Das Standardnotebook (14 Zoll, 16 GB RAM) ist für **mobiles Arbeiten** vorbereitet.
Der bisherige PC wird bei der Auslieferung abgeholt.

**Lieferzeit:** ca. 15 Arbeitstage.
""",
        once="1149.00",
        fields=(
            fld("modell", "Modell", CHOICE, choices=(
                "Standard 14 Zoll", "Leistungsstark 16 Zoll (CAD/GIS)")),
            fld("zubehoer", "Zubehör", MULTI, required=False, choices=(
                "Notebooktasche", "Maus", "Tastatur", "Blickschutzfilter")),
            fld("liefertermin", "Gewünschter Liefertermin", DATE, required=False,
                earliest_days=5, latest_days=180),
            room(),
        ),
        steps=(LINE_MANAGER, CC_OWNER),
    ),
    item(
        "monitor", "Zusätzlicher Monitor", "hardware", G_WORKPLACE,
        "Zweiter Bildschirm für den Arbeitsplatz.",
        """
Ein zweiter Monitor lohnt sich bei Arbeit mit **mehreren Fachverfahren** gleichzeitig.
""",
        once="189.00",
        fields=(
            fld("groesse", "Größe", CHOICE, choices=("24 Zoll", "27 Zoll")),
            fld("hoehenverstellbar", "Höhenverstellbarer Standfuß (ergonomisch)", YES_NO,
                required=False),
            room(),
        ),
        steps=(LINE_MANAGER,),
    ),
    item(
        "dockingstation", "Dockingstation", "hardware", G_WORKPLACE,
        "Anschluss für Monitor, Tastatur und Netzwerk am Notebook-Arbeitsplatz.",
        """
Passend zu den Standardnotebooks (USB-C). Bei Desk-Sharing ist je Arbeitsplatz bereits
eine Dockingstation vorhanden.
""",
        once="229.00",
        fields=(room(),),
    ),
    item(
        "headset", "Headset", "hardware", G_WORKPLACE,
        "Für Telefonie und Videokonferenzen.",
        """
Headsets sind persönliche Geräte und werden aus hygienischen Gründen nicht geteilt.
""",
        once="89.00",
        fields=(
            fld("ausfuehrung", "Ausführung", CHOICE, choices=(
                "Kabelgebunden (USB)", "Kabellos (Bluetooth)")),
        ),
    ),
    item(
        "drucker", "Arbeitsplatzdrucker", "hardware", G_WORKPLACE,
        "Einzelplatzdrucker nur in begründeten Ausnahmefällen.",
        """
Standard sind die **Multifunktionsgeräte** auf den Fluren (Druck mit Dienstausweis).
Ein Einzelplatzdrucker kommt nur in Frage, wenn z. B. vertrauliche Unterlagen
(Personalakten, Sozialdaten) nicht anders gedruckt werden können.
""",
        once="289.00", monthly="4.50",
        fields=(
            reason("Begründung für den Einzelplatzdrucker"),
            fld("farbe", "Farbdruck", YES_NO, required=False),
            room(),
        ),
        steps=(LINE_MANAGER, CC_OWNER),
    ),
    item(
        "arbeitsplatz-umzug", "Umzug eines Arbeitsplatzes", "hardware", G_WORKPLACE,
        "Ab- und Aufbau von IT-Geräten bei Raumwechsel.",
        """
Bitte melden Sie Umzüge **mindestens 10 Arbeitstage** vorher an. Möbel organisiert das
Hauptamt (Zentrale Dienste).
""",
        fields=(
            fld("raum_alt", "Bisheriger Raum", T, pattern=r"[A-Z] ?[0-9]\.[0-9]{3}",
                max_length=10),
            fld("raum_neu", "Neuer Raum", T, pattern=r"[A-Z] ?[0-9]\.[0-9]{3}", max_length=10),
            fld("datum", "Umzugstermin", DATE),
            fld("anzahl", "Anzahl Arbeitsplätze", NUM, min_value=1, max_value=20),
        ),
    ),
    item(
        "faxanschluss", "Faxanschluss (analog)", "hardware", G_WORKPLACE,
        "Eingestellt: Fax wird durch E-Mail und das Bürgerpostfach ersetzt.",
        """
Analoge Faxanschlüsse werden nicht mehr eingerichtet. Nutzen Sie das
**Funktionspostfach** oder das Bürgerpostfach.
""",
        monthly="8.00",
        fields=(room(),),
        active=False,
    ),
    # --- Fachverfahren ---
    item(
        "zugang-einwohnermeldewesen", "Zugang Einwohnermeldewesen", "fachverfahren",
        G_APPLICATIONS,
        "Zugriff auf das Melderegister (Auskunft oder Sachbearbeitung).",
        """
Das Melderegister enthält besonders schutzwürdige Daten (BMG). Jeder Zugriff wird
**protokolliert**. Vor dem ersten Zugriff ist die Datenschutzschulung Meldewesen Pflicht.
""",
        monthly="4.80",
        departments=("32", "33"),
        fields=(
            fld("rolle", "Rolle", CHOICE, choices=(
                "Auskunft (nur lesen)", "Sachbearbeitung", "Fachadministration")),
            fld("schulung", "Datenschutzschulung Meldewesen besucht", YES_NO),
            fld("ab", "Benötigt ab", DATE, needed_from=True),
        ),
        steps=(LINE_MANAGER, DPO),
    ),
    item(
        "zugang-finanzwesen", "Zugang Finanzwesen / Kassenverfahren", "fachverfahren",
        G_APPLICATIONS,
        "Haushalt, Anordnungen und Zahlungsverkehr im Finanzverfahren.",
        """
Rechte im Finanzverfahren werden nach dem **Vier-Augen-Prinzip** vergeben: Wer Anordnungen
erteilt, darf keine Zahlungen freigeben. Die Verfahrensverantwortung in der Kämmerei prüft
jeden Antrag.
""",
        monthly="7.50",
        fields=(
            fld("module", "Module", MULTI, choices=(
                "Haushaltsplanung", "Mittelbewirtschaftung / Anordnungswesen",
                "Zahlungsverkehr (Stadtkasse)", "Anlagenbuchhaltung", "Auswertungen")),
            fld("anordnungsbefugnis", "Anordnungsbefugnis", YES_NO),
            fld("betragsgrenze", "Betragsgrenze für Anordnungen (EUR)", NUM,
                "Nur mit Anordnungsbefugnis.", required=False, min_value=0,
                max_value=250000),
        ),
        steps=(LINE_MANAGER, FINANCE),
    ),
    item(
        "zugang-personenstandswesen", "Zugang Personenstandswesen", "fachverfahren",
        G_APPLICATIONS,
        "Elektronisches Personenstandsregister für das Standesamt.",
        """
Beurkundungen dürfen nur **bestellte Standesbeamtinnen und Standesbeamte** vornehmen.
""",
        monthly="4.80",
        departments=("34",),
        fields=(
            fld("rolle", "Rolle", CHOICE, choices=(
                "Standesbeamtin/Standesbeamter", "Sachbearbeitung", "Auskunft")),
            fld("bestellt", "Bestellung zur Standesbeamtin / zum Standesbeamten liegt vor",
                YES_NO),
            fld("bestellt_am", "Bestellt am", DATE, required=False),
        ),
        steps=(LINE_MANAGER, DPO),
    ),
    item(
        "ratsinformationssystem", "Zugang Ratsinformationssystem", "fachverfahren",
        G_APPLICATIONS,
        "Vorlagen, Sitzungen und Beschlüsse der Gremien.",
        """
Lesezugriff auf öffentliche Vorlagen hat jede(r). Diese Leistung ist für
**Vorlagenerstellung** und den **Sitzungsdienst**.
""",
        fields=(
            fld("rolle", "Rolle", CHOICE, choices=(
                "Vorlagen erstellen", "Sitzungsdienst", "Nichtöffentliche Vorlagen lesen")),
            fld("gremien", "Gremien", MULTI, choices=(
                "Rat", "Hauptausschuss", "Finanzausschuss", "Bauausschuss",
                "Jugendhilfeausschuss", "Sozialausschuss", "Schulausschuss")),
        ),
        steps=(LINE_MANAGER,),
    ),
    item(
        "zugang-sozialhilfe", "Zugang Fachverfahren Sozialhilfe (SGB XII)", "fachverfahren",
        G_APPLICATIONS,
        "Leistungsakten der Hilfe zum Lebensunterhalt und Grundsicherung.",
        """
Sozialdaten unterliegen dem **Sozialgeheimnis** (§ 35 SGB I).
""",
        monthly="6.20",
        departments=("50",),
        fields=(
            fld("rolle", "Rolle", CHOICE, choices=(
                "Sachbearbeitung", "Sachgebietsleitung", "Auskunft")),
            fld("ab", "Benötigt ab", DATE, needed_from=True),
        ),
        steps=(LINE_MANAGER, DPO),
    ),
    item(
        "zugang-jugendhilfe", "Zugang Fachverfahren Jugendhilfe (SGB VIII)", "fachverfahren",
        G_APPLICATIONS,
        "Fallakten des Allgemeinen Sozialen Dienstes und der wirtschaftlichen Jugendhilfe.",
        """
Zugriff nur auf die Fälle des eigenen Sachgebiets. Sozialdaten unterliegen dem
**Sozialgeheimnis**.
""",
        monthly="6.20",
        departments=("51",),
        fields=(
            fld("bereich", "Bereich", CHOICE, choices=(
                "Allgemeiner Sozialer Dienst", "Wirtschaftliche Jugendhilfe",
                "Kindertagesbetreuung")),
            fld("ab", "Benötigt ab", DATE, needed_from=True),
        ),
        steps=(LINE_MANAGER, DPO),
    ),
    item(
        "zugang-baugenehmigung", "Zugang Baugenehmigungsverfahren", "fachverfahren",
        G_APPLICATIONS,
        "Digitale Bauanträge, Beteiligungen und Bescheide.",
        """
Für die Beteiligung anderer Ämter genügt die Rolle **Stellungnahme**.
""",
        monthly="5.40",
        departments=("61", "63"),
        fields=(
            fld("rolle", "Rolle", CHOICE, choices=(
                "Sachbearbeitung", "Stellungnahme (Beteiligung)", "Auskunft")),
        ),
        steps=(LINE_MANAGER,),
    ),
    item(
        "geoinformationssystem", "Zugang Geoinformationssystem (GIS)", "fachverfahren",
        G_APPLICATIONS,
        "Stadtplan, Liegenschaftskataster, Bebauungspläne und Fachkataster.",
        """
Eigentümerangaben aus dem Liegenschaftskataster (ALKIS) sind nur mit berechtigtem
Interesse einsehbar und werden **protokolliert**.
""",
        departments=("32", "61", "63", "67"),
        fields=(
            fld("module", "Module", MULTI, choices=(
                "Stadtplan und Luftbilder", "Liegenschaftskataster (ALKIS)", "Bebauungspläne",
                "Baumkataster", "Leitungsauskunft")),
            fld("eigentuemerdaten", "Einsicht in Eigentümerangaben nötig", YES_NO),
        ),
        steps=(LINE_MANAGER,),
    ),
)  # fmt: skip


# --- writing -----------------------------------------------------------------------------


def apply(obj, values: dict) -> bool:
    """Set ``values`` on ``obj``; True if anything differed. Compares foreign keys by id."""
    changed = False
    for name, value in values.items():
        model_field = obj._meta.get_field(name)
        attname, new = name, value
        if model_field.many_to_one or model_field.one_to_one:
            attname, new = model_field.attname, getattr(value, "pk", value)
        if getattr(obj, attname) != new:
            setattr(obj, attname, new)
            changed = True
    return changed


def upsert(model, lookup: dict, values: dict):
    """get-or-create by ``lookup``, then update ``values``; saves only if something changed."""
    obj = model.objects.filter(**lookup).first()
    if obj is None:
        return model.objects.create(**lookup, **values), True
    if apply(obj, values):
        obj.save()
        return obj, True
    return obj, False


# Words people search for that the item's text does not contain (synonyms, everyday terms).
# Delivered once: devices, one-time changes. Their fulfilled orders are the record; everything
# else grants lasting access, listed under "Berechtigungen" until it is revoked.
ONE_OFF_DELIVERIES = {
    "benutzerkonto-anlegen", "konto-verlaengern", "konto-entsperren",
    "gruppenlaufwerk-einrichten", "hardware-token", "diensthandy", "tablet",
    "verlust-mobilgeraet", "notebook", "monitor", "dockingstation", "headset", "drucker",
    "arbeitsplatz-umzug", "sonstige-anfrage",
}  # fmt: skip
# Devices the service desk collects when the person they were delivered to leaves.
COLLECTED_ON_LEAVING = {
    "hardware-token", "diensthandy", "tablet", "notebook", "monitor", "dockingstation",
}  # fmt: skip

# Service levels per category (resolution in working days, response in working hours): the
# demo's due dates, warnings and the SLA compliance in controlling. Automated items answer
# at once (the automation starts); they keep a resolution target for the odd failure.
SLA_TARGETS = {
    "hardware": (10, 8),
    "mobile-geraete": (10, 8),
    "software": (5, 4),
    "fachverfahren": (5, 4),
}
SLA_DEFAULT = (3, 4)

KEYWORDS = {
    "benutzerkonto-anlegen": "Account, Login, Anmeldung, neue Mitarbeiterin, neuer Mitarbeiter",
    "sonstige-anfrage": "Anfrage, Anliegen, Sonstiges",
    "konto-verlaengern": "Account, Verlängerung, Befristung, Ablauf",
    "konto-entsperren": "Passwort, Passwort vergessen, gesperrt, Login, Anmeldung",
    "gastkonto": "Gast, Externe, Praktikum, Besuch",
    "admin-zweitkonto": "Admin, Administrator, Adminrechte",
    "zugriff-netzlaufwerk": "Laufwerk, Ordner, Freigabe, Share, Dateiablage",
    "berechtigungsgruppe": "Gruppe, Rechte, AD-Gruppe",
    "gruppenlaufwerk-einrichten": "Laufwerk, Teamlaufwerk, Share, Ablage",
    "vpn-zugang": "Homeoffice, Remote, mobiles Arbeiten, Fernzugriff",
    "fernwartung-dienstleister": "Remote, Support, Dienstleister",
    "hardware-token": "Token, 2FA, MFA, Zwei-Faktor",
    "funktionspostfach": "Sammelpostfach, Gruppenpostfach, Shared Mailbox, Mail",
    "verteilerliste": "Verteiler, Mailingliste, Mail",
    "postfach-erweiterung": "Speicherplatz, Postfach voll, Mailbox, Mail",
    "zugriff-postfach": "Vertretung, Urlaub, Mailbox, Mail",
    "microsoft-visio": "Diagramm, Flussdiagramm, Lizenz",
    "adobe-acrobat-pro": "PDF, Lizenz",
    "microsoft-project": "Projektmanagement, Lizenz",
    "autocad-lt": "CAD, Bauplan, Lizenz",
    "ocr-software": "Scanner, Scannen, Texterkennung",
    "fachsoftware": "Programm, Anwendung, Installation, Lizenz",
    "diensthandy": "Handy, Mobiltelefon, iPhone, Telefon",
    "tablet": "iPad",
    "sim-karte": "SIM, Mobilfunk, Datenvolumen",
    "verlust-mobilgeraet": "Handy verloren, kaputt, Diebstahl, Displaybruch",
    "notebook": "Laptop, Rechner, Computer, PC",
    "monitor": "Bildschirm, Display",
    "dockingstation": "Dock, Port-Replikator, USB-C",
    "headset": "Kopfhörer, Mikrofon, Telefonie, Videokonferenz",
    "drucker": "Printer, Ausdruck",
    "arbeitsplatz-umzug": "Umzug, Raumwechsel, Büro",
    "faxanschluss": "Fax, Telefax",
    "zugang-einwohnermeldewesen": "Meldewesen, Einwohnermeldeamt, Bürgeramt",
    "zugang-finanzwesen": "Finanzen, Kasse, Haushalt, Buchhaltung",
    "zugang-personenstandswesen": "Standesamt, Personenstand",
    "ratsinformationssystem": "Rat, Sitzung, Gremien, RIS",
    "zugang-sozialhilfe": "Sozialamt",
    "zugang-jugendhilfe": "Jugendamt",
    "zugang-baugenehmigung": "Bauamt, Bauantrag",
    "geoinformationssystem": "Karten, Geodaten, Stadtplan",
}


# Bundles: items a manager orders in one go. (item slug, selected by default)
BUNDLES = [
    {
        "slug": "neue-mitarbeiterin",
        "name": "Neue Mitarbeiterin / neuer Mitarbeiter",
        "description": (
            "Alles für den ersten Arbeitstag: Benutzerkonto mit E-Mail-Postfach, Notebook und "
            "Headset; VPN-Zugang und Diensthandy bei Bedarf dazu wählen."
        ),
        "items": [
            ("benutzerkonto-anlegen", True),
            ("notebook", True),
            ("headset", True),
            ("vpn-zugang", False),
            ("diensthandy", False),
        ],
    },
]


class Command(BaseCommand):
    help = f"Load demo data for {CITY}: organisation, ~200 employees, demo logins, catalogue."

    def handle(self, *args, **options):
        with transaction.atomic():
            counts = self.seed()
        if options["verbosity"] >= 1:
            self.stdout.write(
                self.style.SUCCESS(f"Demo data for {CITY} loaded:")
                + "".join(f"\n  {name}: {number}" for name, number in counts.items())
                + f"\n  Demo logins (password '{DEMO_PASSWORD}'): "
                + ", ".join(login.username for login in LOGINS)
            )

    def seed(self) -> dict[str, int]:
        groups = self.seed_groups()
        people, heads, leaders = plan_people()
        cost_centres, departments = self.seed_organisation()
        users = self.seed_users(people, groups)
        employees = self.seed_employees(people, users, departments, cost_centres)
        self.assign_heads(heads, leaders, employees, departments, cost_centres)
        categories = self.seed_categories()
        self.seed_items(categories, groups, departments)
        self.seed_bundles()
        return {
            "groups": len(groups),
            "cost centres": len(cost_centres),
            "departments": len(departments),
            "employees": len(employees),
            "categories": len(categories),
            "catalogue items": CatalogueItem.objects.filter(
                slug__in=[i["slug"] for i in ITEMS]
            ).count(),
            "form fields": FormField.objects.filter(
                item__slug__in=[i["slug"] for i in ITEMS]
            ).count(),
            "approval steps": ApprovalPolicyStep.objects.filter(
                item__slug__in=[i["slug"] for i in ITEMS]
            ).count(),
            "bundles": Bundle.objects.filter(slug__in=[b["slug"] for b in BUNDLES]).count(),
        }

    def seed_bundles(self) -> None:
        items = CatalogueItem.objects.in_bulk(
            [slug for spec in BUNDLES for slug, _selected in spec["items"]], field_name="slug"
        )
        for spec in BUNDLES:
            bundle, _changed = upsert(
                Bundle,
                {"slug": spec["slug"]},
                {"name": spec["name"], "description": spec["description"], "is_active": True},
            )
            for position, (slug, selected) in enumerate(spec["items"], start=1):
                upsert(
                    BundleItem,
                    {"bundle": bundle, "item": items[slug]},
                    {"position": position, "selected": selected},
                )

    def seed_groups(self) -> dict[str, Group]:
        names = (roles.IT_ADMIN, roles.CONTROLLING, *SERVICE_OWNER_GROUPS, G_DPO, G_FINANCE)
        roles.ensure_role_groups()  # after a test flush the permissions may be gone
        return {name: Group.objects.get_or_create(name=name)[0] for name in names}

    def seed_organisation(self) -> tuple[dict[str, CostCentre], dict[str, Department]]:
        cost_centres: dict[str, CostCentre] = {}
        departments: dict[str, Department] = {}
        for unit in (*DEZERNATE, *AEMTER):  # parents come first
            code = f"KS-{unit.code.replace('D', '0')}-100"
            cost_centres[code], _ = upsert(CostCentre, {"code": code}, {"name": unit.name})
            departments[unit.code], _ = upsert(
                Department,
                {"code": unit.code},
                {
                    "name": unit.name,
                    "parent": departments.get(unit.parent),
                    "cost_centre": cost_centres[code],
                },
            )
        for code, name, _department, _team in EXTRA_COST_CENTRES:
            cost_centres[code], _ = upsert(CostCentre, {"code": code}, {"name": name})
        return cost_centres, departments

    def seed_users(self, people: list[Person], groups: dict[str, Group]) -> dict:
        User = get_user_model()
        existing = User.objects.in_bulk([p.username for p in people], field_name="username")
        # Hashing is slow by design: hash once, and keep the current hash while it still
        # matches, so a second run leaves the rows as they are.
        sample = existing.get(LOGINS[0].username)
        if sample is not None and check_password(DEMO_PASSWORD, sample.password):
            password = sample.password
        else:
            password = make_password(DEMO_PASSWORD)
        fields = ["first_name", "last_name", "email", "password", "is_active", "is_staff",
                  "is_superuser"]  # fmt: skip
        new, changed = [], []
        for person in people:
            values = {
                "first_name": person.first_name,
                "last_name": person.last_name,
                "email": person.email,
                "password": password,
                "is_active": True,
                "is_staff": person.is_staff,
                "is_superuser": person.is_superuser,
            }
            user = existing.get(person.username)
            if user is None:
                new.append(User(username=person.username, **values))
            elif apply(user, values):
                changed.append(user)
        User.objects.bulk_create(new)
        User.objects.bulk_update(changed, fields)
        users = User.objects.in_bulk([p.username for p in people], field_name="username")
        memberships = [
            User.groups.through(user_id=users[p.username].pk, group_id=groups[name].pk)
            for p in people
            for name in p.groups
        ]
        User.groups.through.objects.bulk_create(memberships, ignore_conflicts=True)
        return users

    def seed_employees(self, people, users, departments, cost_centres) -> dict[str, Employee]:
        numbers = [p.personnel_number for p in people]
        by_number = Employee.objects.in_bulk(numbers, field_name="personnel_number")
        by_user = {e.user_id: e for e in Employee.objects.filter(user__in=users.values())}
        new, changed = [], []
        for person in people:
            user = users[person.username]
            values = {
                "user": user,
                "personnel_number": person.personnel_number,
                "department": departments[person.department],
                "cost_centre": cost_centres[person.cost_centre] if person.cost_centre else None,
                "job_title": person.job_title,
                "is_active": True,
            }
            employee = by_number.get(person.personnel_number) or by_user.get(user.pk)
            if employee is None:
                new.append(Employee(**values))
            elif apply(employee, values):
                changed.append(employee)
        Employee.objects.bulk_create(new)
        Employee.objects.bulk_update(
            changed,
            ["user", "personnel_number", "department", "cost_centre", "job_title", "is_active"],
        )
        employees = Employee.objects.in_bulk(numbers, field_name="personnel_number")
        # Managers in a second pass: new rows need their ids first.
        changed = []
        for person in people:
            employee = employees[person.personnel_number]
            manager = employees[person.manager] if person.manager else None
            if apply(employee, {"manager": manager}):
                changed.append(employee)
        Employee.objects.bulk_update(changed, ["manager"])
        return employees

    def assign_heads(self, heads, leaders, employees, departments, cost_centres) -> None:
        owners = {f"KS-{code.replace('D', '0')}-100": heads[code] for code in heads}
        owners.update({code: leaders[(dept, team)] for code, _, dept, team in EXTRA_COST_CENTRES})
        for code, number in owners.items():
            if apply(cost_centres[code], {"owner": employees[number]}):
                cost_centres[code].save()
        for code, number in heads.items():
            if apply(departments[code], {"head": employees[number]}):
                departments[code].save()

    def seed_categories(self) -> dict[str, Category]:
        return {
            slug: upsert(
                Category,
                {"slug": slug},
                {"name": name, "description": description, "position": position * 10},
            )[0]
            for position, (slug, name, description) in enumerate(CATEGORIES, start=1)
        }

    def seed_items(self, categories, groups, departments) -> None:
        existing = CatalogueItem.objects.prefetch_related(
            "form_fields", "approval_steps", "allowed_departments", "allowed_groups"
        ).in_bulk([spec["slug"] for spec in ITEMS], field_name="slug")
        for spec in ITEMS:
            values = {
                "name": spec["name"],
                "category": categories[spec["category"]],
                "service_owner": groups[spec["service_owner"]],
                "summary": spec["summary"],
                "description": spec["description"],
                "keywords": KEYWORDS.get(spec["slug"], ""),
                "price_once": spec["price_once"],
                "price_monthly": spec["price_monthly"],
                "fulfilment_kind": spec["fulfilment_kind"],
                "audience": Audience.RESTRICTED
                if spec["departments"] or spec["groups"]
                else Audience.EVERYONE,
                "orderable_for_others": spec["orderable_for_others"],
                "grants_access": spec["slug"] not in ONE_OFF_DELIVERIES,
                "collect_on_leaving": spec["slug"] in COLLECTED_ON_LEAVING,
                "is_active": spec["is_active"],
                "licence_pool_size": spec["licence_pool_size"],
                "sla_target_days": SLA_TARGETS.get(spec["category"], SLA_DEFAULT)[0],
                "response_target_hours": SLA_TARGETS.get(spec["category"], SLA_DEFAULT)[1],
            }
            item = existing.get(spec["slug"])
            created = item is None
            if created:
                item = CatalogueItem.objects.create(slug=spec["slug"], **values)
                changed = True
            else:
                changed = apply(item, values)
                if changed:
                    item.save()
            changed |= self.sync_form(item, spec, groups, created)
            changed |= self.sync_audience(item, spec, groups, departments, created)
            if changed and not created:
                # Like an admin edit: a changed item gets a new version; orders keep theirs.
                CatalogueItem.objects.filter(pk=item.pk).update(version=F("version") + 1)

    def sync_form(self, item, spec, groups, created: bool) -> bool:
        changed = False
        fields = {} if created else {f.key: f for f in item.form_fields.all()}
        for position, values in enumerate(spec["fields"], start=1):
            values = {**values, "position": position}
            key = values.pop("key")
            if key not in fields:
                FormField.objects.create(item=item, key=key, **values)
                changed = True
            elif apply(fields[key], values):
                fields[key].save()
                changed = True
        wanted = {f["key"] for f in spec["fields"]}
        stale = [f.pk for key, f in fields.items() if key not in wanted]
        steps = {} if created else {s.position: s for s in item.approval_steps.all()}
        for position, values in enumerate(spec["steps"], start=1):
            values = {**values, "group": groups[values["group"]] if values["group"] else None}
            if position not in steps:
                ApprovalPolicyStep.objects.create(item=item, position=position, **values)
                changed = True
            elif apply(steps[position], values):
                steps[position].save()
                changed = True
        extra = [s.pk for position, s in steps.items() if position > len(spec["steps"])]
        if stale or extra:
            FormField.objects.filter(pk__in=stale).delete()
            ApprovalPolicyStep.objects.filter(pk__in=extra).delete()
            changed = True
        return changed

    def sync_audience(self, item, spec, groups, departments, created: bool) -> bool:
        changed = False
        for relation, wanted in (
            (item.allowed_departments, {departments[code].pk for code in spec["departments"]}),
            (item.allowed_groups, {groups[name].pk for name in spec["groups"]}),
        ):
            current = set() if created else {obj.pk for obj in relation.all()}
            if current != wanted:
                relation.set(wanted)
                changed = True
        return changed
