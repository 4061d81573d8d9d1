"""Step messages: the Django template language on a sandbox.

A message is written by an admin and rendered for thousands of customers, so it may only read plain values
we put in front of it: no model instances (no method calls, no related lookups), no {% load %}, {% include %}
or {% url %}, only the tags and filters below. Unknown variables and syntax errors are found when the step is
saved (content_errors), never at send time.

Variables (CONTEXT_VARIABLES): {{ contact.name }}, {{ contact.city }}, {{ contact.tier }}, {{ owner.name }},
{{ custom.<key> }} for every active custom field, {{ unsubscribe }} (the phrase from the SOP settings).
"""

from collections.abc import Iterable
from functools import lru_cache

from django.template import Context, Engine, Library, TemplateSyntaxError, defaultfilters, defaulttags
from django.template.base import FilterExpression, Node, Variable, VariableNode
from django.template.defaulttags import FirstOfNode, ForNode, IfNode, TemplateLiteral, WithNode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from contacts.models import Contact, CustomField

SAFE_TAGS = (
    "if", "for", "with", "firstof", "now", "comment", "spaceless", "verbatim", "templatetag", "autoescape",
)  # fmt: skip
SAFE_FILTERS = (
    "default", "default_if_none", "date", "time", "upper", "lower", "title", "capfirst", "truncatechars",
    "truncatewords", "floatformat", "add", "length", "join", "cut", "slice", "first", "last", "yesno",
    "linebreaksbr", "striptags", "stringformat", "pluralize", "wordcount", "center", "ljust", "rjust",
)  # fmt: skip

register = Library()
for _name in SAFE_TAGS:
    register.tag(_name, defaulttags.register.tags[_name])
for _name in SAFE_FILTERS:
    register.filters[_name] = defaultfilters.register.filters[_name]


class SandboxEngine(Engine):
    # Engine adds Django's default tags and filters (incl. {% include %}, {% load %}, {% url %}) to any
    # builtins it is given; the sandbox has only ours.
    default_builtins = []


# No loaders (nothing to include), no libraries (nothing to {% load %}), plain text out.
ENGINE = SandboxEngine(
    builtins=["sop.content"], libraries={}, loaders=[], autoescape=False, string_if_invalid=""
)

# root -> {key: description}; a root with no keys is a plain value ({{ unsubscribe }}).
CONTEXT_VARIABLES = {
    "contact": {
        "name": gettext_lazy("Customer's name"),
        "city": gettext_lazy("City"),
        "tier": gettext_lazy("Tier"),
        "birthday": gettext_lazy("Birthday"),
        "order_count": gettext_lazy("Number of orders"),
        "total_spent": gettext_lazy("Total spent"),
    },
    "owner": {"name": gettext_lazy("Owner's name")},
    "unsubscribe": {},
}


def _custom_field_keys() -> dict[str, str]:
    return {f.key: f.label_zh for f in CustomField.objects.filter(archived_at__isnull=True)}


def variable_help() -> list[tuple[str, str]]:
    """(placeholder, description) for the step editor's variable chips."""
    rows = [
        (f"{{{{ {root}.{key} }}}}", str(label))
        for root, keys in CONTEXT_VARIABLES.items()
        for key, label in keys.items()
    ]
    rows.append(("{{ unsubscribe }}", _("Unsubscribe phrase")))
    rows += [(f"{{{{ custom.{key} }}}}", label) for key, label in _custom_field_keys().items()]
    return rows


@lru_cache(maxsize=512)
def compile_content(content: str):
    """The compiled template (cached: a dispatch batch renders the same step for many customers)."""
    return ENGINE.from_string(content)


# --- validation -----------------------------------------------------------------------------------------


def _expressions(node: Node) -> Iterable[FilterExpression]:
    if isinstance(node, VariableNode):
        yield node.filter_expression
    elif isinstance(node, IfNode):
        for condition, _nodelist in node.conditions_nodelists:
            yield from _condition_expressions(condition)
    elif isinstance(node, ForNode):
        yield node.sequence
    elif isinstance(node, FirstOfNode):
        yield from node.vars
    elif isinstance(node, WithNode):
        yield from node.extra_context.values()


def _condition_expressions(condition) -> Iterable[FilterExpression]:
    if condition is None:
        return
    if isinstance(condition, TemplateLiteral):
        yield condition.value
        return
    for part in (getattr(condition, "first", None), getattr(condition, "second", None)):
        if part is not None:
            yield from _condition_expressions(part)


def _variables(expression: FilterExpression) -> Iterable[Variable]:
    if isinstance(expression.var, Variable) and expression.var.lookups:
        yield expression.var
    for _func, args in expression.filters:
        for is_lookup, arg in args:
            if is_lookup and isinstance(arg, Variable) and arg.lookups:
                yield arg


def _local_names(node: Node) -> set[str]:
    if isinstance(node, ForNode):
        return set(node.loopvars) | {"forloop"}
    if isinstance(node, WithNode):
        return set(node.extra_context)
    return set()


def _unknown(lookups: tuple[str, ...], local: set[str], custom_keys: set[str]) -> bool:
    root = lookups[0]
    if root in local:
        return False
    if root == "custom":
        return len(lookups) != 2 or lookups[1] not in custom_keys
    if root not in CONTEXT_VARIABLES:
        return True
    keys = CONTEXT_VARIABLES[root]
    if not keys:
        return len(lookups) != 1
    return len(lookups) != 2 or lookups[1] not in keys


def _walk(nodelist, local: set[str], custom_keys: set[str], found: list[str]) -> None:
    for node in nodelist:
        for expression in _expressions(node):
            for variable in _variables(expression):
                if _unknown(variable.lookups, local, custom_keys):
                    found.append(variable.var)
        inner = local | _local_names(node)
        for attr in node.child_nodelists:
            child = getattr(node, attr, None)
            if child:
                _walk(child, inner, custom_keys, found)
        if isinstance(node, IfNode):
            for _condition, branch in node.conditions_nodelists:
                _walk(branch, inner, custom_keys, found)


def content_errors(content: str) -> list[str]:
    """Why this message cannot be sent, in words for the step form; [] when it is fine."""
    if not content.strip():
        return [_("Write the message.")]
    try:
        template = ENGINE.from_string(content)
    except TemplateSyntaxError as error:
        return [_("Template syntax error: %(error)s") % {"error": error}]
    found: list[str] = []
    _walk(template.nodelist, set(), set(_custom_field_keys()), found)
    return [
        _("Unknown variable “%(name)s”. Use one of the variables listed under the message.") % {"name": name}
        for name in dict.fromkeys(found)
    ]


# --- rendering --------------------------------------------------------------------------------------------


def contact_contexts(contact_ids: Iterable[int], *, unsubscribe: str) -> dict[int, dict]:
    """The render context of each contact, read with one query (values only, never model instances)."""
    rows = Contact.objects.filter(id__in=list(contact_ids)).values(
        "id", "name", "city", "birthday", "order_count", "total_spent", "custom_fields",
        "tier__name", "owner__display_name", "owner__username",
    )  # fmt: skip
    contexts = {}
    for row in rows:
        contexts[row["id"]] = {
            "contact": {
                "name": row["name"],
                "city": row["city"],
                "tier": row["tier__name"] or "",
                "birthday": row["birthday"],
                "order_count": row["order_count"],
                "total_spent": row["total_spent"],
            },
            "owner": {"name": row["owner__display_name"] or row["owner__username"] or ""},
            "custom": row["custom_fields"] or {},
            "unsubscribe": unsubscribe,
        }
    return contexts


def render_content(content: str, context: dict) -> str:
    return compile_content(content).render(Context(context, autoescape=False)).strip()
