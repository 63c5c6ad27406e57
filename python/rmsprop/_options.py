"""Python keyword options -> the (name, text) pairs that rmsprop::Options::from_pairs reads."""


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def option_pairs(flavor, options):
    """Pairs for a flavor (or None: torch's defaults) and explicit options; None values are
    left to the flavor."""
    pairs = [] if flavor is None else [("flavor", str(flavor))]
    pairs += [(name, _text(value)) for name, value in options.items() if value is not None]
    return pairs
