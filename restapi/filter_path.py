"""Elasticsearch's ``filter_path`` URL parameter: the parts of a response body the client asked for.

Paths are comma-separated, dotted, and may hold ``*`` (any part of one name) and ``**`` (any number
of levels); a path that starts with ``-`` removes what it matches. Lists are transparent: a path
applies to each of their elements.
"""

from fnmatch import fnmatchcase


def _parse(value: str) -> tuple[list, list]:
    includes, excludes = [], []
    for path in value.split(","):
        path = path.strip()
        if not path:
            continue
        target = excludes if path.startswith("-") else includes
        target.append(tuple(path.lstrip("-").split(".")))
    return includes, excludes


def _part_matches(pattern: str, name: str) -> bool:
    # Only * is special, as in Elasticsearch; fnmatch's ? and [ stand for themselves here.
    escaped = pattern.replace("[", "[[]").replace("?", "[?]")
    return fnmatchcase(name, escaped)


def _advance(paths: list, name: str) -> tuple[list, bool]:
    """The rest of each path after ``name``, and whether one of them ends there.

    Each distinct rest is kept once: every rest is a suffix of a requested path, so however many
    ``**`` a path holds and however deep the body, the work per name stays bounded by the paths'
    length, never growing with the number of ways ``**`` can match.
    """
    rests, ends, seen = [], False, set()
    pending = list(paths)
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        head, rest = path[0], path[1:]
        if head == "**":
            rests.append(path)  # it takes this name and maybe more
            if rest:
                pending.append(rest)  # it takes no level at all
            else:
                ends = True
        elif _part_matches(head, name):
            if rest:
                rests.append(rest)
            else:
                ends = True
    return list(dict.fromkeys(rests)), ends


_DROPPED = object()


def _include(value, paths: list):
    if isinstance(value, list):
        kept = [_include(item, paths) for item in value]
        kept = [item for item in kept if item is not _DROPPED]
        return kept if kept else _DROPPED
    if not isinstance(value, dict):
        return _DROPPED
    kept = {}
    for name, child in value.items():
        rests, ends = _advance(paths, name)
        if ends:
            kept[name] = child
        elif rests:
            filtered = _include(child, rests)
            if filtered is not _DROPPED:
                kept[name] = filtered
    return kept if kept else _DROPPED


def _exclude(value, paths: list):
    if isinstance(value, list):
        return [_exclude(item, paths) for item in value]
    if not isinstance(value, dict):
        return value
    kept = {}
    for name, child in value.items():
        rests, ends = _advance(paths, name)
        if not ends:
            kept[name] = _exclude(child, rests) if rests else child
    return kept


def filter_response(body: dict, filter_path: str | None) -> dict:
    """``body`` reduced to what ``filter_path`` keeps; all of it when there is no filter."""
    if not filter_path:
        return body
    includes, excludes = _parse(filter_path)
    if includes:
        body = _include(body, includes)
        body = {} if body is _DROPPED else body
    return _exclude(body, excludes) if excludes else body
