"""The API Keys pages (SPEC §5, §6): list, create, details, update, rotate and invalidate, at Kibana's
paths.

Each view joins a queryset from ``apikeys.selectors`` with a FilterSet, a Table or a Form, and
writes only through ``apikeys.services``; who may see or do what is asked of the selectors.
"""

import json
import re
from dataclasses import dataclass
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_tables2 import RequestConfig

from accounts.exceptions import Conflict, NotFound, PermissionDenied, ValidationError
from accounts.principals import principal_of_session
from apikeys import periods, reveal, selectors, services
from apikeys.charts import api_key_overview, cached_for_scope
from apikeys.filtersets import ApiKeyFilters, owner_suggestions
from apikeys.forms import (
    ROLE_DESCRIPTOR_BOILERPLATES,
    CreateApiKeyForm,
    InvalidateApiKeysForm,
    RotateApiKeyForm,
    UpdateApiKeyForm,
)
from apikeys.preview import privileges_without_effect, requested_applications
from apikeys.tables import ApiKeyPaginator, ApiKeyTable, api_key_status
from application_privileges.selectors import definitions_for
from restapi.tls import api_key_service_enabled, https_required

# "N matching" is exact up to this many keys, and "More than" it beyond, counted no further.
MAX_COUNTED = 10_000
# The names shown when confirming the invalidation of every matching key.
SAMPLE_SIZE = 10
PER_PAGE_CHOICES = (10, 20, 50, 100)
DEFAULT_PER_PAGE = 20
# What generate_api_key_id makes: anything else is no key's id, and is not looked up.
API_KEY_ID = re.compile(r"[A-Za-z0-9_-]{20}")


@dataclass(frozen=True)
class MatchingCount:
    count: int

    @property
    def more(self) -> bool:
        """Beyond what is counted: shown as "More than 10,000"."""
        return self.count > MAX_COUNTED

    @property
    def limit(self) -> int:
        return MAX_COUNTED


def home(request):
    """Those who may open the API keys page start there; anyone else, and everyone over plain HTTP
    (where that page only explains that HTTPS is required), gets the introduction."""
    enabled = api_key_service_enabled(request)
    signed_in = request.user.is_authenticated
    if enabled and signed_in and selectors.can_view_api_keys(principal_of_session(request)):
        return redirect("api_keys")
    return render(request, "home.html", {"api_key_service_enabled": enabled})


def api_key_page(action):
    """HTTPS first (plain HTTP never shows a control), then login, then the privilege rules: a
    domain PermissionDenied becomes the permission-denied page naming what grants ``action``."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                return view(request, principal_of_session(request), *args, **kwargs)
            except PermissionDenied:
                context = {"granted_by": selectors.GRANTED_BY[action], "section": "management"}
                return render(request, "apikeys/permission_denied.html", context, status=403)

        return https_required(login_required(wrapper))

    return decorate


def _per_page(request) -> int:
    value = request.GET.get("per_page", "")
    return int(value) if value in {str(choice) for choice in PER_PAGE_CHOICES} else DEFAULT_PER_PAGE


@require_http_methods(["GET", "HEAD"])
@api_key_page(selectors.GET_ACTION)
def api_key_list(request, principal):
    keys = selectors.visible_api_keys(principal)
    view_all = selectors.can_view_all_api_keys(principal)
    scope = selectors.visibility_scope(principal)
    filters = ApiKeyFilters(request.GET, view_all=view_all)
    where = filters.where()
    matching = keys.none() if where is None else keys.filter(where)
    # Owners come in one more query for the whole page rather than by a join: without the join
    # the page query walks the ordering's index and stops after one page, where a join let
    # SQLite's planner scan every owner's keys and sort them all.
    table = ApiKeyTable(matching.select_related(None).prefetch_related("owner"), principal=principal)
    RequestConfig(request, paginate=False).configure(table)
    table.paginate(paginator_class=ApiKeyPaginator, per_page=_per_page(request), page=request.GET.get("page"))
    shown = len(table.page.object_list)
    # Only an empty page pays for this check, to tell "no keys yet" from "no match".
    no_keys_at_all = not shown and where is not None and not keys.exists()
    overview = None if no_keys_at_all else api_key_overview(keys, scope=scope)
    first_row = (table.page.number - 1) * table.paginator.per_page + 1
    return render(
        request,
        "apikeys/api_keys.html",
        {
            "section": "management",
            "table": table,
            "filters": filters,
            "owner_suggestions": _owner_suggestions(keys, scope) if view_all and not no_keys_at_all else [],
            "matching": None if where is None else _matching_count(matching, table.page, first_row, shown),
            "view_all": view_all,
            "is_admin": selectors.is_api_key_admin(principal),
            "read_only": selectors.is_read_only_api_key_viewer(principal),
            "can_invalidate": selectors.can_manage_own_api_keys(principal),
            "can_create": selectors.can_create_api_key(principal),
            "no_keys_at_all": no_keys_at_all,
            "overview": overview,
            "retention_period": periods.setting_in_words("API_KEY_RETENTION_PERIOD"),
            "per_page_choices": PER_PAGE_CHOICES,
            "per_page": table.paginator.per_page,
            "rows_from": first_row,
            "rows_to": first_row + shown - 1,
            "back": request.GET.urlencode(),
            "search": _search_parameters(filters) if where is not None else "",
        },
        status=200 if where is not None else 400,
    )


def _owner_suggestions(keys, scope: str) -> list[str]:
    return cached_for_scope("api-key-owner-suggestions", scope, lambda: owner_suggestions(keys))


def _matching_count(matching, page, first_row: int, shown: int) -> MatchingCount:
    """How many keys match: known without counting when the page is the last; otherwise counted up
    to one past ``MAX_COUNTED`` (one bounded COUNT), so a million matches cost no more than 10,001."""
    if not page.has_next() and (shown or page.number == 1):
        return MatchingCount(first_row - 1 + shown)
    return MatchingCount(matching.order_by()[: MAX_COUNTED + 1].count())


def _search_parameters(filters: ApiKeyFilters) -> str:
    """The search and filters alone, as URL parameters: what "Invalidate all matching" carries."""
    kept = QueryDict(mutable=True)
    for name in filters.fields:
        values = filters.data.getlist(name)
        if any(values):
            kept.setlist(name, [value for value in values if value])
    return kept.urlencode()


@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
@api_key_page(selectors.CREATE_ACTION)
def api_key_create(request, principal):
    """A created key is shown once, on the page the POST redirects to (``apikeys.reveal``), so reload
    and Back never post the form again. The Preview button posts the same form and creates
    nothing: it names the parts of the role descriptors that go beyond the user's own privileges."""
    if not selectors.can_create_api_key(principal):
        raise selectors.unauthorized(principal, selectors.CREATE_ACTION)
    form = CreateApiKeyForm(request.POST if request.method == "POST" else None)
    preview = None
    if form.is_bound and "preview" in request.POST:
        preview = _preview(form, principal)
    elif form.is_bound and form.is_valid():
        try:
            created = services.create_api_key(principal, **form.cleaned_data)
        except Conflict as error:
            form.add_error("name", error.reason)
        except ValidationError as error:
            form.add_error(None, error.reason)
        else:
            return _reveal(request, principal, created)
    return render(
        request,
        "apikeys/api_key_create.html",
        {"section": "management", "form": form, "boilerplates": _boilerplates(), "preview": preview},
        status=400 if form.is_bound and form.errors else 200,
    )


def _preview(form, principal) -> dict | None:
    """The Preview button's answer: nothing is saved; the parts of the role descriptors that go
    beyond the user's own privileges are named. None when the descriptors themselves are wrong."""
    descriptors = form.role_descriptors_for_preview()
    if descriptors is None:
        return None
    applications = requested_applications(descriptors)
    held = principal.privileges
    concerned = {entry["application"] for entry in applications} | held.application_names()
    definitions = definitions_for(concerned) if applications else {}
    return {
        "requested": bool(descriptors),
        "no_effect": privileges_without_effect(descriptors, held, definitions),
        "applications": applications,
    }


def _boilerplates() -> dict:
    return {name: json.dumps(value, indent=2) for name, value in ROLE_DESCRIPTOR_BOILERPLATES.items()}


def _reveal(request, principal, created: services.CreatedApiKey, replaced=None):
    """Send the browser to the page that shows the new key once, with the cookie that opens it."""
    url = reverse("api_key_reveal", args=[created.api_key.pk])
    shown = {"secret": created.secret, "replaced": replaced and replaced.pk}
    cookie = reveal.hold(created.api_key.pk, principal.user.pk, shown)
    response = HttpResponseRedirect(url, status=303)  # See Other: a reload asks for the page, not the form
    response.set_cookie(
        reveal.COOKIE, cookie, max_age=reveal.HELD_SECONDS, path=url, secure=True, httponly=True,
        samesite="Strict",
    )
    return response


@require_http_methods(["GET"])
@never_cache
@api_key_page(selectors.GET_ACTION)
def api_key_reveal(request, principal, key_id):
    """The new key's secret, to this browser and once: a reload, Back, another browser or an
    expired entry get the page that says it was shown. Not answered to HEAD, which would use it up."""
    url = reverse("api_key_reveal", args=[key_id])
    key = _find(selectors.visible_api_keys(principal), key_id)
    shown = reveal.take(key_id, principal.user.pk, request.COOKIES.get(reveal.COOKIE)) if key else None
    if shown is None:
        context = {"section": "management", "key": key, "can_create": selectors.can_create_api_key(principal)}
        response = render(request, "apikeys/api_key_shown_once.html", context, status=410)
    else:
        created = services.CreatedApiKey(api_key=key, secret=shown["secret"])
        context = {
            "section": "management",
            "key": key,
            "formats": _credential_formats(request, created),
            "replaced_id": shown["replaced"],
        }
        response = render(request, "apikeys/api_key_created.html", context)
    response.delete_cookie(reveal.COOKIE, path=url, samesite="Strict")
    return response


def _find(keys, key_id: str):
    return keys.filter(pk=key_id).first() if API_KEY_ID.fullmatch(key_id) else None


def _not_found(request, key_id: str):
    # Someone else's key and no key at all look the same.
    context = {"section": "management", "key_id": key_id}
    return render(request, "apikeys/not_found.html", context, status=404)


@require_http_methods(["GET", "HEAD"])
@api_key_page(selectors.GET_ACTION)
def api_key_details(request, principal, key_id):
    key = _find(selectors.visible_api_keys(principal), key_id)
    if key is None:
        return _not_found(request, key_id)
    may_invalidate = key.invalidated is None and selectors.can_invalidate(principal, key)
    return render(
        request,
        "apikeys/api_key_details.html",
        {
            "section": "management",
            "key": key,
            "status": api_key_status(key),
            "may_invalidate": may_invalidate,
            "may_rotate": key.is_active() and selectors.can_rotate(principal, key),
            "may_update": key.is_active() and selectors.can_update(principal, key),
            "metadata": json.dumps(key.metadata, indent=2),
            "role_descriptors": json.dumps(key.role_descriptors, indent=2),
            "limited_by": json.dumps(key.limited_by, indent=2),
        },
    )


@require_http_methods(["GET", "HEAD", "POST"])
@api_key_page(selectors.UPDATE_ACTION)
def api_key_update(request, principal, key_id):
    """GET shows the key's role descriptors and metadata to edit; POST sets them, and a new
    expiration when one is given, and limits the key by the user's roles of now. Only the owner
    updates a key: anyone else who sees it is sent back to its details page, as for a key that is
    no longer active."""
    if not selectors.can_manage_own_api_keys(principal):
        raise selectors.unauthorized(principal, selectors.UPDATE_ACTION)
    key = _find(selectors.visible_api_keys(principal), key_id)
    if key is None:
        return _not_found(request, key_id)
    details = reverse("api_key_details", args=[key.pk])
    refusal = _update_refusal(principal, key)
    if refusal:
        messages.error(request, f"API key '{key.name}' cannot be updated: {refusal}.")
        return redirect(details)
    form = UpdateApiKeyForm(request.POST if request.method == "POST" else None, key=key)
    preview = None
    if form.is_bound and "preview" in request.POST:
        preview = _preview(form, principal)
    elif form.is_bound and form.is_valid():
        try:
            updated = services.update_api_key(principal, key.pk, **form.changes())
        except NotFound as error:
            messages.error(request, f"Could not update API key '{key.name}': {error.reason}")
            return redirect(details)
        except ValidationError as error:
            form.add_error(None, error.reason)
        else:
            if updated:
                messages.success(request, f"Updated API key '{key.name}'.")
            else:
                messages.info(request, f"API key '{key.name}' already was as you asked: nothing changed.")
            return redirect(details)
    context = {"section": "management", "key": key, "form": form, "details_url": details}
    return render(
        request,
        "apikeys/api_key_update.html",
        {**context, "boilerplates": _boilerplates(), "preview": preview},
        status=400 if form.is_bound and form.errors else 200,
    )


def _update_refusal(principal, key) -> str:
    """Why the page will not update the key, in words for its details page; empty when it will."""
    if not selectors.can_update(principal, key):
        return f"only its owner, {key.owner.username}, can update it"
    if not key.is_active():
        return f"it is {api_key_status(key).label.lower()}"
    return ""


@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
@api_key_page(selectors.INVALIDATE_ACTION)
def api_key_rotate(request, principal, key_id):
    """GET asks for confirmation; POST replaces the key with a new one with the same name and
    privileges, for the same lifetime from now or until the chosen expiration, revealed once like a
    new key. Only keys the user may invalidate can be rotated: for anyone else the key does not
    exist."""
    key = _find(selectors.invalidatable_api_keys(principal), key_id)
    if key is None:
        return _not_found(request, key_id)
    details = reverse("api_key_details", args=[key.pk])
    form = RotateApiKeyForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            created = services.rotate_api_key(principal, key.pk, expiration=form.cleaned_data["expiration"])
        except (NotFound, ValidationError, PermissionDenied, Conflict) as error:
            messages.error(request, f"Could not rotate API key '{key.name}': {error.reason}")
            return redirect(details)
        return _reveal(request, principal, created, replaced=key)
    if not key.is_active():
        state = api_key_status(key).label.lower()
        messages.error(request, f"API key '{key.name}' cannot be rotated: it is {state}.")
        return redirect(details)
    lifetime = key.expiration and periods.in_words(key.expiration - key.created)
    context = {"section": "management", "key": key, "lifetime": lifetime, "details_url": details}
    return render(
        request, "apikeys/rotate_confirm.html", {**context, "form": form}, status=400 if form.errors else 200
    )


def _credential_formats(request, created: services.CreatedApiKey) -> list[dict]:
    """The new key as Kibana offers it, and as the tools that use it are configured, against this
    server: the value for an Authorization header, curl, Beats, Logstash, the Python client, JSON."""
    key = created.api_key
    server = request.build_absolute_uri("/").rstrip("/")
    authenticate = request.build_absolute_uri("/_security/_authenticate")
    id_and_key = f"{key.id}:{created.secret}"
    credential = {"id": key.id, "name": key.name, "api_key": created.secret, "encoded": created.encoded}
    return [
        {
            "id": "encoded",
            "label": "Encoded",
            "value": created.encoded,
            "help": "For the header Authorization: ApiKey <encoded>, as the REST API and clients expect it.",
        },
        {
            "id": "curl",
            "label": "curl",
            "value": f'curl -H "Authorization: ApiKey {created.encoded}" "{authenticate}"',
            "help": "Asks this server who the key authenticates as. Add --cacert with your CA's certificate "
            "if the server's certificate is self-signed.",
        },
        {
            "id": "beats",
            "label": "Beats",
            "value": f'output.elasticsearch.hosts: ["{server}"]\n'
            f'output.elasticsearch.api_key: "{id_and_key}"',
            "help": "For the Elasticsearch output of Filebeat, Metricbeat and the other Beats, in their YAML "
            "configuration.",
        },
        {
            "id": "logstash",
            "label": "Logstash",
            "value": (
                "output {\n  elasticsearch {\n"
                f'    hosts => ["{server}"]\n    api_key => "{id_and_key}"\n'
                "  }\n}"
            ),
            "help": "For the Logstash elasticsearch output plugin.",
        },
        {
            "id": "python",
            "label": "Python",
            "value": "from elasticsearch import Elasticsearch\n\n"
            f'client = Elasticsearch("{server}", api_key="{created.encoded}")',
            "help": "For the official Python client, elasticsearch-py.",
        },
        {
            "id": "json",
            "label": "JSON",
            "value": json.dumps(credential, indent=2),
            "help": "The whole response of the create API key API.",
        },
    ]


def _list_url(back: str) -> str:
    return reverse("api_keys") + (f"?{back}" if back else "")


@require_http_methods(["GET", "HEAD", "POST"])
@api_key_page(selectors.INVALIDATE_ACTION)
def api_keys_invalidate(request, principal):
    """GET asks for confirmation, listing the selected keys by name; POST invalidates them."""
    form = InvalidateApiKeysForm(request.POST if request.method == "POST" else request.GET)
    if not form.is_valid():
        messages.error(request, " ".join(form.errors.get("id", [])) or "Select the API keys to invalidate.")
        return redirect(_list_url(form.cleaned_data.get("back", "")))
    ids, back = form.cleaned_data["id"], form.cleaned_data["back"]
    if request.method == "POST":
        try:
            result = services.invalidate_api_keys(principal, ids=ids)
        except ValidationError as error:
            messages.error(request, error.reason)
        else:
            _report_invalidation(request, result)
        return redirect(_list_url(back))
    found = {key.pk: key for key in selectors.invalidatable_api_keys(principal).filter(pk__in=ids)}
    chosen = [found[key_id] for key_id in ids if key_id in found]
    return render(
        request,
        "apikeys/invalidate_confirm.html",
        {
            "section": "management",
            "selected": [key for key in chosen if key.invalidated is None],
            "already_invalidated": [key for key in chosen if key.invalidated is not None],
            "not_found": [key_id for key_id in ids if key_id not in found],
            "back": back,
            "list_url": _list_url(back),
            "retention_period": periods.setting_in_words("API_KEY_RETENTION_PERIOD"),
        },
    )


def _count(number: int, singular: str, plural: str) -> str:
    return f"{number:,} {singular if number == 1 else plural}"


def _report_invalidation(request, result: services.InvalidationResult) -> None:
    if result.invalidated or result.previously_invalidated:
        text = f"Invalidated {_count(len(result.invalidated), 'API key', 'API keys')}"
        if result.previously_invalidated:
            already = len(result.previously_invalidated)
            text += f"; {already:,} {'was' if already == 1 else 'were'} already invalidated"
        messages.success(request, text + ".")
    if result.errors:
        shown = ", ".join(error["id"][:40] for error in result.errors[:10])
        more = f" and {len(result.errors) - 10} more" if len(result.errors) > 10 else ""
        it = "it" if len(result.errors) == 1 else "them"
        messages.error(
            request,
            f"Could not invalidate {_count(len(result.errors), 'API key', 'API keys')} ({shown}{more}): "
            f"not found, or you do not have permission to invalidate {it}. Nothing was changed for {it}.",
        )


@require_http_methods(["GET", "HEAD", "POST"])
@api_key_page(selectors.INVALIDATE_ACTION)
def api_keys_invalidate_matching(request, principal):
    """Administrators only: GET asks for confirmation, with the count and the first names; POST
    invalidates every key that matches the search and filters it carries, evaluated again."""
    if not selectors.is_api_key_admin(principal):
        raise selectors.unauthorized(principal, selectors.INVALIDATE_ACTION, beyond_own=True)
    filters = ApiKeyFilters(request.POST if request.method == "POST" else request.GET, view_all=True)
    where = filters.where()
    if where is None:
        messages.error(request, " ".join(error for errors in filters.errors.values() for error in errors))
        return redirect(reverse("api_keys"))
    list_url = _list_url(_search_parameters(filters))
    if request.method == "POST":
        result = services.invalidate_matching_api_keys(principal, where)
        _report_invalidation(request, result)
        return redirect(list_url)
    matching = selectors.invalidatable_api_keys(principal).filter(where, invalidated__isnull=True)
    return render(
        request,
        "apikeys/invalidate_matching_confirm.html",
        {
            "section": "management",
            "count": matching.count(),
            "sample": matching.order_by("-created", "id")[:SAMPLE_SIZE],
            "search": filters.cleaned_data["q"],
            "parameters": [
                (name, value) for name in filters.fields for value in filters.data.getlist(name) if value
            ],
            "list_url": list_url,
            "retention_period": periods.setting_in_words("API_KEY_RETENTION_PERIOD"),
        },
    )
