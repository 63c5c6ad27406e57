"""Options as Python values. The option table is the C++ core's (see NOTE: [typed options]
in python/src/module.cpp): nothing here lists an option."""
from . import _core

#: Every option's name, in the core's table order.
OPTION_NAMES = tuple(row["name"] for row in _core.option_table())


def resolve(flavor, options):
    """Validated ``_core.Options``: the flavor's preset (None: torch's defaults), then every
    option whose value is not None (None leaves it to the flavor)."""
    return _core.options(flavor, options)
