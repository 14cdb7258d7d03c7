"""Education communities (教联体) and the remote-lesson timetable (三个课堂) of a seeded province."""

import random
from collections import defaultdict
from datetime import date

from core.calendar import LESSON_PERIODS
from core.seed import hubei

KINDS = (("merged", 60), ("co_built", 30), ("mixed", 5), ("collaborative", 5))
COMPULSORY = {"primary", "junior", "nine_year", "teaching_point"}


def _member_rank(s) -> tuple:
    # Teaching points first, then rural, then town schools: the ones communities are for.
    return ({"teaching_point": 0}.get(s.stage, 1), {"rural": 0, "town": 1}.get(s.locale, 2), s.code)


def communities(rng: random.Random, reg, schools: list) -> None:
    """Pair strong urban/town lead schools with rural members, ~62–78% of compulsory schools covered."""
    by_county: dict[str, list] = defaultdict(list)
    for s in schools:
        if s.stage in COMPULSORY:
            by_county[s.county].append(s)
    counties_by_city: dict[str, list[str]] = defaultdict(list)
    for county, members in by_county.items():
        counties_by_city[members[0].city].append(county)
    taken: set[str] = set()
    for county, pool in by_county.items():
        target = rng.uniform(0.62, 0.78) * len(pool)
        strong = sorted((s for s in pool if s.locale in ("urban", "town") and s.stage != "teaching_point"),
                        key=lambda s: (-s.classes, s.code))
        leads = strong[: max(1, round(target / 5))]  # the largest schools lead; a lead has ~4 members
        candidates = sorted((s for s in pool if s not in leads), key=_member_rank)
        covered, serial = 0, 0
        for lead in leads:
            if covered >= target or not candidates or (len(pool) <= 2 and rng.random() < 0.3):
                break
            members = [candidates.pop(0) for _ in range(min(len(candidates), rng.randint(2, 6)))]
            neighbours = [c for c in counties_by_city[lead.city] if c != county]
            if neighbours and rng.random() < 0.1:
                extra = [s for s in by_county[rng.choice(neighbours)] if s.code not in taken and s.locale == "rural"]
                members += extra[:1]  # a cross-county (跨区域) member
            serial += 1
            _community(rng, reg, county, serial, lead, members)
            taken.update([lead.code] + [m.code for m in members])
            covered += 1 + len(members)


def _community(rng: random.Random, reg, county: str, serial: int, lead, members: list) -> None:
    code = f"C{county}{serial:02d}"
    kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
    founded = date.fromordinal(date(2022, 10, 1).toordinal() + rng.randint(0, 600))
    reg.community.append((code, f"{lead.name}教联体", kind, lead.code, county, founded))
    reg.community_member.append((code, lead.code, "lead", founded))
    for m in members:
        reg.community_member.append((code, m.code, "member", founded))


def lessons(rng: random.Random, reg, schools: list, school_year: int) -> None:
    """Dedicated lessons inside communities, master-teacher lessons per city, elite lessons per county."""
    boards: dict[str, list[tuple[str, str]]] = defaultdict(list)
    recorders: dict[str, str] = {}
    for device_id, kind, school, room, *_ in reg.device:
        if kind == "board":
            boards[school].append((device_id, room))
        elif kind == "recorder":
            recorders[school] = device_id
    valid = (date(school_year, 9, 1), date(school_year + 1, 7, 3))
    by_code = {s.code: s for s in schools}
    members: dict[str, list[str]] = defaultdict(list)
    for community, school, role, _ in reg.community_member:
        if role == "member":
            members[community].append(school)
    serial = 0

    def add(kind: str, subject: str, main_school: str, community: str | None, receivers: list[str]) -> None:
        nonlocal serial
        receivers = [r for r in dict.fromkeys(receivers) if r != main_school and boards[r]]
        if not receivers:
            return
        serial += 1
        lesson_id = f"L{serial:06d}"
        start, end = LESSON_PERIODS[rng.randrange(7)]
        reg.remote_lesson.append((lesson_id, kind, subject, recorders[main_school], community, rng.randint(1, 5),
                                  start, end, *valid))
        for r in receivers:
            device_id, room = boards[r][0]
            reg.remote_lesson_receiver.append((lesson_id, device_id, room))

    for code, _name, _kind, lead, _county, _founded in reg.community:
        if lead in recorders:
            for _ in range(rng.randint(1, 3)):
                receivers = sorted(members[code], key=lambda c: _member_rank(by_code[c]))[: rng.randint(1, 3)]
                add("dedicated", rng.choice(hubei.SUBJECTS_DEDICATED), lead, code, receivers)
    by_area: dict[str, list] = defaultdict(list)
    for s in schools:
        by_area[s.city].append(s)
        if s.county != s.city:  # province-administered units are their own single county
            by_area[s.county].append(s)
    for area, group in sorted(by_area.items()):
        mains = [s.code for s in group if s.locale == "urban" and s.code in recorders]
        if not mains:
            continue
        others = [s.code for s in group]
        kind = "master" if len(area) == 6 and area.endswith("00") else "elite"
        subject = rng.choice(hubei.SUBJECTS_MASTER)
        add(kind, subject, mains[0], None, rng.sample(others, min(len(others), 8 if kind == "elite" else 5)))
