"""Education communities (教联体) of the seeded province.

Each county pairs its strongest urban and town schools (牵头学校) with rural and town
members, teaching points first, until about 60–80% of its compulsory-education schools
are inside a community; the province lands near 70%, between the 2024 and 2025 targets.
A few communities take a member from the nearest county of the same city (跨区域).
"""

import math
import random
from collections import defaultdict
from datetime import date, timedelta

from ops.seed.schools import HOME_CITY, County, School

COMPULSORY = frozenset({"primary", "junior", "nine_year", "teaching_point"})
# Suizhou's mix (43 merged, 22 co-built, 3 mixed of 68) plus a few collaborative ones.
KINDS = {"merged": 60, "co_built": 30, "mixed": 5, "collaborative": 5}
MEMBER_COUNTS = {2: 15, 3: 25, 4: 25, 5: 15, 6: 10, 7: 6, 8: 4}
MAX_MEMBERS = 10
COVERAGE = (0.60, 0.80)
CROSS_COUNTY_SHARE = 0.08
COMPATIBLE = {"primary": {"primary", "teaching_point", "nine_year"}, "junior": {"junior", "nine_year"}}
MEMBER_RANK = {"teaching_point": 0.0, "rural": 1.0, "town": 2.0, "urban": 3.0}
FIRST_FOUNDED = date(2022, 9, 1)


def _member_key(rng: random.Random, lead: School):
    """Sort key for member candidates: compatible stage, then teaching points, rural, town (mostly)."""
    wanted = COMPATIBLE.get(lead.stage, COMPULSORY)

    def key(s: School) -> tuple[int, float]:
        rank = MEMBER_RANK["teaching_point" if s.stage == "teaching_point" else s.locale]
        return (s.stage not in wanted, rank + rng.random() * 1.5)
    return key


def _nearest(county: County, others: list[County]) -> County | None:
    same_city = [c for c in others if c.city == county.city and c.code != county.code]
    return min(same_city, key=lambda c: math.dist((c.latitude, c.longitude), (county.latitude, county.longitude)),
               default=None)


class CommunityBuilder:
    """Forms communities county by county, carrying the coverage shortfall on to the next county."""

    def __init__(self, rng: random.Random, reg, schools: list[School], counties: list[County]) -> None:
        self.rng, self.reg, self.counties = rng, reg, counties
        self.pools: dict[str, list[School]] = defaultdict(list)
        for s in schools:
            if s.stage in COMPULSORY:
                self.pools[s.county].append(s)
        self.taken: set[str] = set()
        self.carry = 0.0

    def build(self) -> None:
        """Communities for every county, in registry order."""
        for county in self.counties:
            self._county(county)

    def _county(self, county: County) -> None:
        pool = self.pools[county.code]
        # In the demo the home city's few schools all join, so its communities are full ones.
        showcase = county.city == HOME_CITY and len(pool) <= 6
        goal = float(len(pool)) if showcase else self.rng.uniform(*COVERAGE) * len(pool) + self.carry
        covered = sum(s.code in self.taken for s in pool)
        leads = sorted((s for s in pool if s.locale != "rural" and s.stage != "teaching_point"),
                       key=lambda s: (s.locale != "urban", "实验" not in s.name, -s.classes, s.code))
        fewest = 1 if len(pool) <= 6 else 2  # a demo county has too few schools for bigger groups
        serial = 0
        for lead in leads:
            if lead.code in self.taken:
                continue
            free = [s for s in pool if s.code not in self.taken and s is not lead]
            wanted = min(self.rng.choices(list(MEMBER_COUNTS), list(MEMBER_COUNTS.values()))[0], len(free),
                         int(goal - covered - 1 + self.rng.random()))
            if wanted < fewest or serial == 99:
                break
            members = sorted(free, key=_member_key(self.rng, lead))[:wanted]
            covered += 1 + len(members)
            members += self._cross_county(county)
            serial += 1
            self._add(f"C{county.code}{serial:02d}", county, lead, members)
        if not showcase:
            self.carry = goal - covered

    def _cross_county(self, county: County) -> list[School]:
        neighbour = _nearest(county, self.counties)
        if neighbour is None or self.rng.random() >= CROSS_COUNTY_SHARE:
            return []
        rural = [s for s in self.pools[neighbour.code] if s.locale == "rural" and s.code not in self.taken]
        return rural[:1]

    def _add(self, code: str, county: County, lead: School, members: list[School]) -> None:
        founded = FIRST_FOUNDED + timedelta(days=self.rng.randint(0, 660))
        kind = self.rng.choices(list(KINDS), list(KINDS.values()))[0]
        self.reg.community.append((code, f"{lead.name}教联体", kind, lead.code, county.code, founded))
        self.reg.community_member.append((code, lead.code, "lead", founded))
        for m in members[:MAX_MEMBERS]:
            joined = founded + timedelta(days=self.rng.randint(30, 365)) if self.rng.random() < 0.15 else founded
            self.reg.community_member.append((code, m.code, "member", joined))
        self.taken.update([lead.code, *(m.code for m in members[:MAX_MEMBERS])])


def communities(rng: random.Random, reg, schools: list[School], counties: list[County]) -> None:
    """Append community and community_member rows for the whole province."""
    CommunityBuilder(rng, reg, schools, counties).build()
