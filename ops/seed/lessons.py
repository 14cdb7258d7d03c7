"""The remote-lesson timetable (三个课堂) of the seeded province for one term.

专递课堂 (dedicated): a community's lead school teaches music, art, English, science or
PE from its recording classroom to classes at its member schools, teaching points
first, one to three periods a week. 名师课堂 (master): a few workshops per city reach
teachers across the city. 名校网络课堂 (elite): the county's strongest school broadcasts
to many schools of its county. No recorder or board is booked twice in one period.
"""

import random
from collections import defaultdict
from datetime import date

from core.calendar import LESSON_PERIODS
from ops.seed import hubei
from ops.seed.schools import School

PERIODS = LESSON_PERIODS[:7]  # 08:00–16:20; the eighth period is after-school care
WEEKDAYS = (1, 2, 3, 4, 5)
RECEIVING_SCHOOLS = {"dedicated": (1, 3), "master": (5, 10), "elite": (10, 30)}
LESSONS_PER_AREA = {"demo": {"master": 1, "elite": 1}, "province": {"master": 3, "elite": 2}}

Board = tuple[str, str]  # device id, classroom


class Timetable:
    """Remote lessons and their receivers, with every device's booked (weekday, period) slots."""

    def __init__(self, rng: random.Random, reg, term: tuple[date, date]) -> None:
        self.rng, self.reg, self.term = rng, reg, term
        self.boards: dict[str, list[Board]] = defaultdict(list)
        self.recorders: dict[str, str] = {}
        for device_id, kind, school, room, *_ in reg.device:
            if kind == "board":
                self.boards[school].append((device_id, room))
            elif kind == "recorder":
                self.recorders.setdefault(school, device_id)
        self.busy: dict[str, set[tuple[int, int]]] = defaultdict(set)
        self.serials: dict[str, int] = defaultdict(int)

    def _slot(self, main: str) -> tuple[int, int] | None:
        free = [(d, p) for d in WEEKDAYS for p in range(len(PERIODS)) if (d, p) not in self.busy[main]]
        return self.rng.choice(free) if free else None

    def _receiving_board(self, school: str, slot: tuple[int, int], grade: str | None) -> Board | None:
        boards = [b for b in self.boards[school] if slot not in self.busy[b[0]]]
        matching = [b for b in boards if grade and b[1].startswith(grade)]
        return self.rng.choice(matching or boards) if boards else None

    def add(self, key: str, kind: str, subject: str, main_school: str, receiving: list[str],
            community: str | None = None, grade: str | None = None) -> None:
        """One weekly lesson from main_school's recorder to one class at each receiving school, if any is free."""
        main = self.recorders[main_school]
        slot = self._slot(main)
        boards = [self._receiving_board(s, slot, grade) for s in receiving if s != main_school] if slot else []
        boards = [b for b in boards if b]
        if not boards:
            return
        self.serials[key] += 1
        lesson_id = f"{kind[0].upper()}{key}-{self.serials[key]:02d}"
        weekday, period = slot
        starts_at, ends_at = PERIODS[period]
        self.reg.remote_lesson.append((lesson_id, kind, subject, main, community, weekday, starts_at, ends_at,
                                       *self.term))
        for device_id, room in boards:
            self.reg.remote_lesson_receiver.append((lesson_id, device_id, room))
        for device_id in (main, *(b[0] for b in boards)):
            self.busy[device_id].add(slot)


def _dedicated(tt: Timetable, by_code: dict[str, School]) -> None:
    members: dict[str, list[str]] = defaultdict(list)
    for community, school, role, _ in tt.reg.community_member:
        if role == "member":
            members[community].append(school)
    for community, _name, _kind, lead, _county, _founded in tt.reg.community:
        if lead not in tt.recorders or not members[community]:
            continue
        ranked = sorted(members[community], key=lambda c: (by_code[c].stage != "teaching_point", c))
        for subject in tt.rng.sample(hubei.SUBJECTS_DEDICATED, tt.rng.randint(1, 3)):
            receiving = ranked[: tt.rng.randint(*RECEIVING_SCHOOLS["dedicated"])]
            grade = tt.rng.choice(hubei.GRADES[by_code[receiving[0]].stage])
            for _ in range(tt.rng.randint(1, 3)):
                tt.add(community, "dedicated", subject, lead, receiving, community, grade)


def _broadcasts(tt: Timetable, schools: list[School], scale: str) -> None:
    cities: dict[str, list[School]] = defaultdict(list)
    counties: dict[str, list[School]] = defaultdict(list)
    for s in schools:
        cities[s.city].append(s)
        counties[s.county].append(s)
    for kind, areas, subjects in (("master", cities, hubei.SUBJECTS_MASTER),
                                  ("elite", counties, hubei.SUBJECTS_ELITE)):
        for area, group in areas.items():
            mains = sorted((s for s in group if s.locale == "urban" and s.code in tt.recorders),
                           key=lambda s: (-s.classes, s.code))
            codes = [s.code for s in group]
            for main in mains[:LESSONS_PER_AREA[scale][kind]]:
                size = tt.rng.randint(*RECEIVING_SCHOOLS[kind])
                receiving = tt.rng.sample(codes, min(len(codes), size + 1))
                tt.add(area, kind, tt.rng.choice(subjects), main.code, receiving)


def lessons(rng: random.Random, reg, schools: list[School], term: tuple[date, date], scale: str) -> None:
    """Append remote_lesson and remote_lesson_receiver rows valid for the given term."""
    tt = Timetable(rng, reg, term)
    _dedicated(tt, {s.code: s for s in schools})
    _broadcasts(tt, schools, scale)
