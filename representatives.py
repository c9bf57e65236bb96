"""Which member of a duplicate group a deduplicate keeps: one registry of
rules (:data:`RULES`), each a name, a form label and how to rank members.

Ties always fall to the sample added first (``created_at``, then sample id),
and samples without a value (no metadata, field unset) are kept only when no
member has one. Adding a rule is adding one :class:`Rule` to :data:`RULES`.
"""

from dataclasses import dataclass
from typing import Optional

import fiftyone as fo
from fiftyone import ViewField as F

NUMERIC_FIELDS = (fo.IntField, fo.FloatField)


@dataclass(frozen=True)
class Rule:
    """A way to pick a group's representative.

    Attributes:
        name: the value of the ``representative`` parameter
        label: its label in the form
        value: the expression whose value ranks members, or None to rank by
            when they were added; with ``needs_field``, it is applied to the
            chosen numeric field
        highest_first: prefer the highest value (else the lowest)
        needs_field: the rule ranks by a numeric field the user picks
        needs_metadata: compute missing metadata first
        keeps_search_order: keep the member the find put first (no ranking)
    """

    name: str
    label: str
    value: Optional[fo.core.expressions.ViewExpression] = None
    highest_first: bool = True
    needs_field: bool = False
    needs_metadata: bool = False
    keeps_search_order: bool = False

    def expression(self, field: Optional[str]):
        return F(field) if self.needs_field else self.value


FIRST_ADDED = "first_added"
SEARCH = "search"
RULES = {
    rule.name: rule
    for rule in (
        Rule(FIRST_ADDED, "First added"),
        Rule(SEARCH, "Kept by the search (default: the original behaviour)", keeps_search_order=True),
        Rule("highest_resolution", "Highest resolution", F("metadata.width") * F("metadata.height"),
             needs_metadata=True),
        Rule("largest_file", "Largest file", F("metadata.size_bytes"), needs_metadata=True),
        Rule("field_max", "Highest value of a field", needs_field=True),
        Rule("field_min", "Lowest value of a field", highest_first=False, needs_field=True),
    )
}


def numeric_fields(dataset: fo.Dataset) -> list[str]:
    """The top-level int and float sample fields, by name."""
    return sorted(dataset.get_field_schema(ftype=NUMERIC_FIELDS))


def validate(dataset: fo.Dataset, rule: str, field: Optional[str]) -> None:
    """Raises ValueError, naming the parameter, if ``rule`` can't be used."""
    if rule not in RULES:
        raise ValueError(f"representative must be one of {tuple(RULES)}, got '{rule}'")
    if RULES[rule].needs_field and field not in numeric_fields(dataset):
        raise ValueError(
            f"representative_field must be a numeric sample field for rule '{rule}', "
            f"got '{field}'; numeric fields: {numeric_fields(dataset)}"
        )


def _rank_keys(view: fo.DatasetView, rule: Rule, field: Optional[str]) -> dict:
    """{sample id: sort key}, the smallest key being the preferred sample."""
    if rule.needs_metadata:
        view.exists("metadata", False).compute_metadata()
    value = rule.expression(field)
    ids, added = view.values(["id", "created_at"])
    values = view.values(value) if value is not None else [0] * len(ids)
    sign = -1 if rule.highest_first else 1
    return {
        i: (v is None, sign * v if v is not None else 0, a, i)
        for i, a, v in zip(ids, added, values)
    }


def representatives_first(
    view: fo.DatasetView, groups: list[list[str]], rule: str, field: Optional[str] = None
) -> list[list[str]]:
    """Moves each group's representative under ``rule`` to the front.

    Args:
        view: the samples of ``groups``
        groups: lists of sample ids, in the find's order
        rule: a name in :data:`RULES`
        field: the numeric field of a rule that ``needs_field``

    Returns:
        the groups, each with its representative first
    """
    chosen = RULES[rule]
    if chosen.keeps_search_order:
        return groups
    keys = _rank_keys(view, chosen, field)
    result = []
    for ids in groups:
        best = min(ids, key=keys.__getitem__)
        result.append([best] + [i for i in ids if i != best])
    return result
