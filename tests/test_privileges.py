"""SPEC §1 and §2: Elasticsearch privilege names, their implications, index name patterns, role
descriptor validation, and the key ∩ limited_by intersection. Pure Python: no database."""

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.exceptions import ValidationError
from accounts.privileges import (
    CLUSTER_IMPLIED,
    CLUSTER_PRIVILEGES,
    INDEX_IMPLIED,
    INDEX_PRIVILEGES,
    LimitedPrivilegeSet,
    PrivilegeSet,
    privileges_of,
    validate_role_descriptor,
    validate_role_descriptors,
)

# GET /_security/privilege/_builtin of Elasticsearch 8.x/9.x.
ELASTICSEARCH_CLUSTER_PRIVILEGES = """
    all cancel_task create_snapshot cross_cluster_replication cross_cluster_search delegate_pki grant_api_key
    manage manage_api_key manage_autoscaling manage_behavioral_analytics manage_ccr manage_connector
    manage_data_frame_transforms manage_data_stream_global_retention manage_enrich manage_ilm
    manage_index_templates manage_inference manage_ingest_pipelines manage_logstash_pipelines manage_ml
    manage_oidc manage_own_api_key manage_pipeline manage_rollup manage_saml manage_search_application
    manage_search_query_rules manage_search_synonyms manage_security manage_service_account manage_slm
    manage_token manage_transform manage_user_profile manage_watcher monitor monitor_connector
    monitor_data_frame_transforms monitor_data_stream_global_retention monitor_enrich monitor_inference
    monitor_ml monitor_rollup monitor_snapshot monitor_stats monitor_text_structure monitor_transform
    monitor_watcher none post_behavioral_analytics_event read_ccr read_connector_secrets read_fleet_secrets
    read_ilm read_pipeline read_security read_slm transport_client write_connector_secrets write_fleet_secrets
""".split()
ELASTICSEARCH_INDEX_PRIVILEGES = """
    all auto_configure create create_doc create_index cross_cluster_replication
    cross_cluster_replication_internal delete delete_index index maintenance manage
    manage_data_stream_lifecycle manage_follow_index manage_ilm manage_leader_index monitor none read
    read_cross_cluster view_index_metadata write
""".split()

# Every cluster privilege each one implies, besides itself: Elasticsearch's hierarchy (SPEC §1), read
# off the action patterns of Elasticsearch's cluster privileges (A implies B where B's actions are a
# subset of A's), written out in full rather than derived. `all` implies every other name.
ELASTICSEARCH_CLUSTER_IMPLIES = {
    "all": set(ELASTICSEARCH_CLUSTER_PRIVILEGES) - {"all"},
    # cluster:* and the template actions, except cluster:admin/xpack/security/*
    "manage": set("""
        monitor monitor_data_frame_transforms monitor_data_stream_global_retention monitor_inference
        monitor_ml monitor_rollup monitor_text_structure monitor_transform monitor_watcher transport_client
        cancel_task create_snapshot monitor_snapshot manage_autoscaling manage_behavioral_analytics
        post_behavioral_analytics_event manage_connector monitor_connector manage_data_stream_global_retention
        manage_enrich monitor_enrich manage_ilm read_ilm manage_index_templates manage_inference
        manage_ingest_pipelines manage_pipeline read_pipeline manage_logstash_pipelines manage_ml
        manage_rollup
        manage_search_application manage_search_query_rules manage_search_synonyms manage_slm read_slm
        manage_transform manage_data_frame_transforms manage_watcher
        read_connector_secrets write_connector_secrets read_fleet_secrets write_fleet_secrets
        cross_cluster_search cross_cluster_replication
    """.split()),
    # cluster:monitor/* and the template reads
    "monitor": set("""
        monitor_data_frame_transforms monitor_data_stream_global_retention monitor_inference monitor_ml
        monitor_rollup monitor_text_structure monitor_transform monitor_watcher transport_client
    """.split()),
    # cluster:admin/xpack/security/* except delegate_pki's action. manage_saml also holds a
    # cluster:monitor action, and delegate_pki the excluded one: neither is implied.
    "manage_security": {
        "manage_api_key", "manage_own_api_key", "grant_api_key", "read_security", "manage_oidc",
        "manage_service_account", "manage_token", "manage_user_profile",
    },
    "manage_api_key": {"manage_own_api_key", "grant_api_key"},
    "manage_behavioral_analytics": {"post_behavioral_analytics_event"},
    "manage_ccr": {"read_ccr"},
    "manage_connector": {"monitor_connector"},
    "manage_data_stream_global_retention": {"monitor_data_stream_global_retention"},
    "manage_enrich": {"monitor_enrich"},
    "manage_ilm": {"read_ilm"},
    "manage_inference": {"monitor_inference"},
    "manage_ml": {"monitor_ml"},
    "manage_rollup": {"monitor_rollup"},
    "manage_slm": {"read_slm"},
    "manage_watcher": {"monitor_watcher"},
    "create_snapshot": {"monitor_snapshot"},
    # Two names for the same actions imply each other.
    "manage_ingest_pipelines": {"manage_pipeline", "read_pipeline"},
    "manage_pipeline": {"manage_ingest_pipelines", "read_pipeline"},
    "manage_transform": {
        "manage_data_frame_transforms", "monitor_transform", "monitor_data_frame_transforms",
    },
    "manage_data_frame_transforms": {
        "manage_transform", "monitor_transform", "monitor_data_frame_transforms",
    },
    "monitor_transform": {"monitor_data_frame_transforms"},
    "monitor_data_frame_transforms": {"monitor_transform"},
}
# Implications Elasticsearch has that Keyward does not claim (accounts/privileges.py: a check may
# fail where Elasticsearch would pass, never the reverse): secrets and cross-cluster access.
NOT_CLAIMED = {
    ("manage", name) for name in """
        read_connector_secrets write_connector_secrets read_fleet_secrets write_fleet_secrets
        cross_cluster_search cross_cluster_replication
    """.split()
}
CLUSTER_IMPLIES = {
    held: {name for name in implied if (held, name) not in NOT_CLAIMED}
    for held, implied in ELASTICSEARCH_CLUSTER_IMPLIES.items()
}


def cluster_closure(*held) -> set[str]:
    """What holding ``held`` brings, by the table above."""
    return set(held).union(*(CLUSTER_IMPLIES.get(name, set()) for name in held))


# The cluster privileges that decide something in Keyward (SPEC §2).
RULE_PRIVILEGES = "all manage_security manage_api_key manage_own_api_key read_security manage monitor".split()


def role(*cluster, indices=()):
    return {"cluster": list(cluster), "indices": list(indices), "run_as": [], "metadata": {}}


def grants(*cluster, indices=()) -> PrivilegeSet:
    return PrivilegeSet({"r": role(*cluster, indices=indices)})


def index_grant(names, *privileges) -> PrivilegeSet:
    return grants(indices=[{"names": names, "privileges": list(privileges)}])


def refusal(value) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_role_descriptors(value)
    return caught.value.reason


# --- the catalogs -----------------------------------------------------------------------------


def test_cluster_catalog_is_elasticsearchs():
    assert sorted(CLUSTER_PRIVILEGES) == sorted(ELASTICSEARCH_CLUSTER_PRIVILEGES)


def test_index_catalog_is_elasticsearchs():
    assert sorted(INDEX_PRIVILEGES) == sorted(ELASTICSEARCH_INDEX_PRIVILEGES)


def test_implications_only_name_catalog_privileges():
    assert set().union(*CLUSTER_IMPLIED.values()) <= CLUSTER_PRIVILEGES
    assert set().union(*INDEX_IMPLIED.values()) <= INDEX_PRIVILEGES


@pytest.mark.parametrize("implied", [CLUSTER_IMPLIED, INDEX_IMPLIED], ids=["cluster", "index"])
def test_implications_are_closed_transitively(implied):
    for name, closure in implied.items():
        assert name in closure
        for other in closure:
            assert implied[other] <= closure, (name, other)


# --- cluster privileges -----------------------------------------------------------------------


def held_cluster(held: PrivilegeSet) -> dict[str, bool]:
    """The grid row of ``held``: each named cluster privilege, and whether it is held."""
    return {name: held.has_cluster(name) for name in ELASTICSEARCH_CLUSTER_PRIVILEGES}


def grid_row(expected: set[str]) -> dict[str, bool]:
    return {name: name in expected for name in ELASTICSEARCH_CLUSTER_PRIVILEGES}


def test_the_implication_table_names_only_elasticsearch_privileges():
    """A misspelt name in the table would never be asked for, and its cell never checked."""
    assert set(ELASTICSEARCH_CLUSTER_IMPLIES) <= set(ELASTICSEARCH_CLUSTER_PRIVILEGES)
    assert set().union(*ELASTICSEARCH_CLUSTER_IMPLIES.values()) <= set(ELASTICSEARCH_CLUSTER_PRIVILEGES)
    assert {implied for _, implied in NOT_CLAIMED} <= ELASTICSEARCH_CLUSTER_IMPLIES["manage"]


@pytest.mark.parametrize("granted", ELASTICSEARCH_CLUSTER_PRIVILEGES)
def test_each_cluster_privilege_brings_exactly_what_it_implies(granted):
    assert held_cluster(grants(granted)) == grid_row(cluster_closure(granted))


@pytest.mark.parametrize("name", ELASTICSEARCH_CLUSTER_PRIVILEGES)
def test_every_cluster_privilege_is_held_by_itself_and_by_all(name):
    assert grants(name).has_cluster(name)
    assert grants("all").has_cluster(name)


def test_manage_security_implies_manage_own_api_key_through_manage_api_key():
    assert grants("manage_security").has_cluster("manage_own_api_key")


def test_manage_does_not_reach_security_privileges():
    held = grants("manage")
    for name in ("manage_security", "manage_api_key", "manage_own_api_key", "read_security", "grant_api_key"):
        assert not held.has_cluster(name)


def test_read_security_and_manage_own_api_key_do_not_imply_each_other():
    assert not grants("read_security").has_cluster("manage_own_api_key")
    assert not grants("manage_own_api_key").has_cluster("read_security")


def test_implications_run_one_way():
    assert not grants("manage_own_api_key").has_cluster("manage_api_key")
    assert not grants("manage_api_key").has_cluster("manage_security")
    assert not grants("monitor").has_cluster("manage")
    assert not grants("manage_security").has_cluster("all")


def test_monitor_implies_monitor_privileges_under_cluster_monitor_only():
    assert grants("monitor").has_cluster("monitor_ml")
    assert grants("monitor").has_cluster("monitor_transform")
    assert not grants("monitor").has_cluster("monitor_snapshot")
    assert not grants("monitor").has_cluster("monitor_enrich")


def test_equivalent_privileges_imply_each_other():
    assert grants("manage_transform").has_cluster("manage_data_frame_transforms")
    assert grants("manage_data_frame_transforms").has_cluster("manage_transform")
    assert grants("manage_pipeline").has_cluster("manage_ingest_pipelines")


def test_unknown_cluster_privilege_is_never_held():
    assert not grants("all").has_cluster("manage_apikey")
    assert not grants("manage_apikey").has_cluster("manage_apikey")


def test_cluster_privilege_names_are_case_insensitive():
    assert grants("MANAGE_Security").has_cluster("manage_api_key")
    assert grants("manage_security").has_cluster("Manage_Api_Key")


def test_privileges_of_several_roles_add_up():
    held = PrivilegeSet({"a": role("read_security"), "b": role("manage_own_api_key")})
    assert held.has_cluster("read_security") and held.has_cluster("manage_own_api_key")
    assert not held.has_cluster("manage_api_key")


def test_no_roles_hold_nothing():
    assert not PrivilegeSet({}).has_cluster("monitor")
    assert PrivilegeSet({}).cluster_privileges() == []


def test_cluster_action_patterns_grant_matching_actions_only():
    held = grants("cluster:admin/xpack/security/api_key/*")
    assert held.has_cluster("cluster:admin/xpack/security/api_key/get")
    assert not held.has_cluster("cluster:admin/xpack/security/user/get")
    assert not held.has_cluster("manage_api_key")


def test_all_grants_every_cluster_action():
    assert grants("all").has_cluster("cluster:admin/xpack/security/api_key/invalidate")
    assert not grants("manage_security").has_cluster("cluster:admin/xpack/security/api_key/invalidate")


def test_cluster_privileges_for_display_leave_out_implied_ones():
    assert grants("all", "monitor").cluster_privileges() == ["all"]
    assert grants("manage_security", "manage_own_api_key", "monitor").cluster_privileges() == [
        "manage_security", "monitor"
    ]
    assert grants("manage_transform").cluster_privileges() == [
        "manage_data_frame_transforms", "manage_transform"
    ]


# --- index privileges -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ELASTICSEARCH_INDEX_PRIVILEGES)
def test_every_index_privilege_is_held_by_itself_and_by_all(name):
    assert index_grant(["logs"], name).has_index("logs", name)
    assert index_grant(["logs"], "all").has_index("logs", name)


@pytest.mark.parametrize(
    ("granted", "held", "not_held"),
    [
        ("write", ["index", "create", "create_doc", "delete"], ["read", "create_index", "delete_index"]),
        ("index", ["create", "create_doc"], ["delete", "write"]),
        ("create", ["create_doc"], ["index", "delete"]),
        ("create_doc", [], ["create", "index"]),
        ("manage", ["monitor", "view_index_metadata", "create_index", "delete_index", "manage_ilm",
                    "manage_data_stream_lifecycle", "maintenance"], ["read", "write", "index"]),
        ("read", [], ["read_cross_cluster", "write", "view_index_metadata"]),
        ("monitor", [], ["manage", "read"]),
    ],
)
def test_index_privilege_implications(granted, held, not_held):
    granted_set = index_grant(["logs"], granted)
    for name in held:
        assert granted_set.has_index("logs", name), name
    for name in not_held:
        assert not granted_set.has_index("logs", name), name


def test_index_privilege_is_held_only_on_matching_indices():
    held = index_grant(["logs-*"], "read")
    assert held.has_index("logs-2024", "read")
    assert not held.has_index("metrics-2024", "read")


def test_index_privileges_of_different_entries_do_not_mix():
    held = grants(indices=[{"names": ["logs-*"], "privileges": ["read"]},
                           {"names": ["metrics-*"], "privileges": ["write"]}])
    assert held.has_index("logs-1", "read") and held.has_index("metrics-1", "write")
    assert not held.has_index("logs-1", "write") and not held.has_index("metrics-1", "read")


def test_unknown_index_privilege_is_never_held():
    assert not index_grant(["*"], "all").has_index("logs", "reed")


def test_index_action_patterns_grant_matching_actions_only():
    held = index_grant(["logs"], "indices:data/read/*")
    assert held.has_index("logs", "indices:data/read/search")
    assert not held.has_index("logs", "indices:data/write/index")
    assert not held.has_index("logs", "read")
    assert index_grant(["logs"], "all").has_index("logs", "indices:data/write/index")


# --- index name patterns ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "index", "matches"),
    [
        ("*", "anything", True),
        ("*", ".hidden", True),
        ("logs-*", "logs-", True),
        ("logs-*", "logs-2024.01", True),
        ("logs-*", "xlogs-1", False),
        ("*-prod", "api-prod", True),
        ("*-prod", "api-prod-2", False),
        ("log?", "logs", True),
        ("log?", "log", False),
        ("log?", "logss", False),
        ("logs[1]", "logs[1]", True),
        ("logs[1]", "logs1", False),
        ("logs[", "logs[", True),
        ("[ab]", "a", False),
        ("logs.2024", "logs.2024", True),
        ("logs.2024", "logsx2024", False),
        ("a+b", "aab", False),
        ("a+b", "a+b", True),
        ("Logs", "logs", False),
        (r"/logs-\d+/", "logs-12", True),
        (r"/logs-\d+/", "logs-x", False),
        (r"/logs-\d+/", "xlogs-12", False),
        ("/logs-.*/", "logs-anything", True),
        ("/", "/", True),
        # Lucene's syntax: no anchors, quoted strings, numeric intervals
        ("/^logs$/", "logs", False),
        ("/^logs$/", "^logs$", True),
        ('/"logs.*"/', "logs.*", True),
        ('/"logs.*"/', "logs-1", False),
        ("/logs-<1-12>/", "logs-12", True),
        ("/logs-<1-12>/", "logs-13", False),
        ("/logs-@/", "logs-anything", True),
    ],
)
def test_index_name_patterns(pattern, index, matches):
    assert index_grant([pattern], "read").has_index(index, "read") is matches


def test_index_names_may_be_a_single_string():
    assert index_grant("logs-*", "read").has_index("logs-1", "read")


def test_stored_invalid_regex_matches_nothing_rather_than_failing():
    held = grants(indices=[{"names": ["/(unclosed/", "ok"], "privileges": ["read"]}])
    assert not held.has_index("(unclosed", "read")
    assert held.has_index("ok", "read")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="*?", blacklist_categories=("Cs",)), min_size=1))
def test_a_pattern_without_wildcards_matches_only_itself(name):
    if name.startswith("/") and name.endswith("/") and len(name) > 1:
        return
    held = index_grant([name], "read")
    assert held.has_index(name, "read")
    assert not held.has_index(name + "x", "read")


def test_many_wildcards_do_not_backtrack_catastrophically():
    held = index_grant(["*a" * 30 + "b"], "read")
    assert not held.has_index("a" * 255, "read")


# --- validation -------------------------------------------------------------------------------


def test_valid_descriptors_are_returned_normalised():
    value = {"reader": {"cluster": ["monitor"], "indices": [{"names": "logs-*", "privileges": ["read"]}]}}
    assert validate_role_descriptors(value) == {
        "reader": {
            "cluster": ["monitor"],
            "indices": [{"names": ["logs-*"], "privileges": ["read"], "allow_restricted_indices": False}],
            "run_as": [],
            "metadata": {},
        }
    }


def test_validation_returns_a_copy_and_leaves_its_input_alone():
    value = {"reader": {"indices": [{"names": "logs-*", "privileges": ["read"], "query": {"term": {"a": 1}}}],
                        "metadata": {"team": {"name": "a"}}}}
    before = copy.deepcopy(value)
    result = validate_role_descriptors(value)
    result["reader"]["metadata"]["team"]["name"] = "b"
    result["reader"]["indices"][0]["query"]["term"]["a"] = 2
    assert value == before


def test_empty_role_descriptors_are_valid():
    assert validate_role_descriptors({}) == {}


def test_full_role_descriptor_round_trips():
    descriptor = {
        "cluster": ["manage_own_api_key", "cluster:admin/xpack/security/api_key/*"],
        "indices": [{
            "names": ["logs-*", "/metrics-[0-9]+/"],
            "privileges": ["read", "view_index_metadata", "indices:data/read/*"],
            "field_security": {"grant": ["*"], "except": ["secret"]},
            "query": {"term": {"team": "a"}},
            "allow_restricted_indices": True,
        }],
        "applications": [{"application": "kibana-.kibana", "privileges": ["read"], "resources": ["*"]}],
        "run_as": ["other"],
        "metadata": {"owner": "team-a"},
        "remote_indices": [{"clusters": ["remote-*"], "names": ["logs-*"], "privileges": ["read"],
                            "allow_restricted_indices": False}],
        "remote_cluster": [{"privileges": ["monitor_enrich"], "clusters": ["remote-*"]}],
        "restriction": {"workflows": ["search_application_query"]},
        "description": "read logs",
    }
    assert validate_role_descriptor("reader", descriptor) == descriptor


@pytest.mark.parametrize(
    "descriptor",
    [
        # Kibana's read-only and write-only boilerplates.
        {"cluster": [], "indices": [{"names": ["*"], "privileges": ["read"]}]},
        {"cluster": [], "indices": [{"names": ["*"], "privileges": ["write"]}]},
        {"cluster": ["ALL"]},
        {"cluster": ["indices:admin/template/get"]},
        {"indices": [{"names": ["*"], "privileges": ["internal:transport/proxy/indices:data/read/*"]}]},
        {"indices": [{"names": ["logs"], "privileges": ["read"], "query": '{"match_all": {}}'}]},
    ],
)
def test_elasticsearch_descriptors_are_accepted(descriptor):
    validate_role_descriptor("r", descriptor)


@pytest.mark.parametrize("value", [None, [], "role", 1, True])
def test_role_descriptors_must_be_an_object(value):
    assert "[role_descriptors] must be an object" in refusal(value)


@pytest.mark.parametrize("name", ["", "   "])
def test_role_names_must_not_be_empty(name):
    assert "role names" in refusal({name: {}})


def test_role_names_must_be_strings():
    with pytest.raises(ValidationError):
        validate_role_descriptor(1, {})


def test_a_role_descriptor_must_be_an_object():
    assert "failed to parse role [r]" in refusal({"r": ["monitor"]})


def test_unknown_top_level_fields_are_refused_by_name():
    assert refusal({"r": {"cluster": [], "clusters": [], "bogus": 1}}) == (
        "failed to parse role [r]. unexpected field [bogus,clusters]"
    )


def test_unknown_cluster_privilege_is_refused_in_elasticsearchs_words():
    reason = refusal({"r": {"cluster": ["monitor", "manage_apikey"]}})
    assert reason.startswith(
        "unknown cluster privilege [manage_apikey]. a privilege must be either one of the predefined cluster "
        "privilege names [all,cancel_task,create_snapshot,"
    )
    assert reason.endswith(",write_fleet_secrets] or a pattern over one of the available cluster actions")


def test_every_unknown_cluster_privilege_is_named():
    reason = refusal({"r": {"cluster": ["nope", "monitor", "nada"]}})
    assert reason.startswith("unknown cluster privileges [nope,nada]")


def test_unknown_index_privilege_is_refused_by_name():
    reason = refusal({"r": {"indices": [{"names": ["*"], "privileges": ["read", "reed"]}]}})
    assert reason.startswith(
        "unknown index privilege [reed]. a privilege must be either one of the predefined index"
    )
    assert "[all,auto_configure,create," in reason
    assert reason.endswith("or a pattern over one of the available index actions")


def test_a_cluster_privilege_is_not_an_index_privilege():
    assert "unknown index privilege [manage_security]" in refusal(
        {"r": {"indices": [{"names": ["*"], "privileges": ["manage_security"]}]}}
    )


def test_an_index_privilege_is_not_a_cluster_privilege():
    assert "unknown cluster privilege [read]" in refusal({"r": {"cluster": ["read"]}})


@pytest.mark.parametrize("missing", ["names", "privileges"])
def test_index_entries_need_names_and_privileges(missing):
    entry = {"names": ["*"], "privileges": ["read"]}
    del entry[missing]
    assert refusal({"r": {"indices": [entry]}}) == (
        f"failed to parse indices privileges for role [r]. missing required [{missing}] field"
    )


def test_index_entries_need_at_least_one_name_and_privilege():
    assert "at least one index name" in refusal({"r": {"indices": [{"names": [], "privileges": ["read"]}]}})
    assert "at least one privilege" in refusal({"r": {"indices": [{"names": ["*"], "privileges": []}]}})


def test_unknown_index_entry_fields_are_refused_by_name():
    assert "unexpected field [name]" in refusal(
        {"r": {"indices": [{"names": ["*"], "privileges": ["read"], "name": "x"}]}}
    )


def test_invalid_regex_index_pattern_is_refused():
    assert "invalid index name pattern [/(logs/]" in refusal(
        {"r": {"indices": [{"names": ["/(logs/"], "privileges": ["read"]}]}}
    )


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("/a~b/", "the complement operator [~] is not supported"),
        ("/a.*&.*b/", "the intersection operator [&] is not supported"),
        ("/" + "a" * 1001 + "/", "(index.max_regex_length)"),
    ],
)
def test_regex_index_patterns_re2_cannot_run_are_refused_saying_why(pattern, reason):
    reason_given = refusal({"r": {"indices": [{"names": [pattern], "privileges": ["read"]}]}})

    assert reason_given.startswith(
        f"failed to parse indices privileges for role [r]. invalid index name pattern [{pattern}]: "
    )
    assert reason_given.endswith(reason)


@pytest.mark.parametrize(
    "descriptor",
    [
        {"cluster": "monitor"},
        {"cluster": [1]},
        {"cluster": [""]},
        {"cluster": None},
        {"indices": {"names": ["*"], "privileges": ["read"]}},
        {"indices": ["logs"]},
        {"indices": [{"names": 1, "privileges": ["read"]}]},
        {"indices": [{"names": [["logs"]], "privileges": ["read"]}]},
        {"indices": [{"names": ["*"], "privileges": "read"}]},
        {"indices": [{"names": ["*"], "privileges": [None]}]},
        {"indices": [{"names": ["*"], "privileges": ["read"], "allow_restricted_indices": "yes"}]},
        {"indices": [{"names": ["*"], "privileges": ["read"], "query": 1}]},
        {"indices": [{"names": ["*"], "privileges": ["read"], "field_security": ["*"]}]},
        {"indices": [{"names": ["*"], "privileges": ["read"], "field_security": {"grant": "*"}}]},
        {"indices": [{"names": ["*"], "privileges": ["read"], "field_security": {"allow": ["*"]}}]},
        {"run_as": "someone"},
        {"metadata": ["a"]},
        {"applications": [{"application": "app", "privileges": ["read"]}]},
        {"applications": {"application": "app"}},
        {"remote_indices": [{"names": ["*"], "privileges": ["read"]}]},
        {"remote_cluster": [{"privileges": ["monitor"], "clusters": ["*"]}]},
        {"restriction": {"workflows": "x"}},
        {"restriction": {"other": []}},
        {"description": 1},
        {"transient_metadata": []},
    ],
)
def test_wrong_types_anywhere_are_refused(descriptor):
    with pytest.raises(ValidationError):
        validate_role_descriptor("r", descriptor)


def test_metadata_keys_must_not_start_with_underscore():
    assert refusal({"r": {"metadata": {"_reserved": True, "ok": 1}}}) == (
        "failed to parse role [r]. metadata keys may not start with [_]: [_reserved]"
    )


def test_nested_metadata_keys_may_start_with_underscore():
    validate_role_descriptor("r", {"metadata": {"team": {"_id": 1}}})


# --- key ∩ limited_by -------------------------------------------------------------------------

SUPERUSER = {"superuser": {"cluster": ["all"], "indices": [{"names": ["*"], "privileges": ["all"]}],
                           "run_as": ["*"], "metadata": {"_reserved": True}}}


def test_without_limited_by_the_descriptors_alone_decide():
    held = privileges_of({"r": role("manage_api_key")})
    assert type(held) is PrivilegeSet
    assert held.has_cluster("manage_own_api_key")


def test_empty_key_descriptors_mean_limited_by_alone():
    held = privileges_of({}, limited_by={"r": role("manage_security")})
    assert held.has_cluster("manage_security")
    assert held.has_cluster("read_security")


def test_key_privileges_are_the_intersection_with_limited_by():
    held = privileges_of(
        {"k": role("monitor", "manage_api_key")}, limited_by={"r": role("manage_own_api_key")}
    )
    assert isinstance(held, LimitedPrivilegeSet)
    assert held.has_cluster("manage_own_api_key")
    assert not held.has_cluster("manage_api_key")
    assert not held.has_cluster("monitor")


def test_a_monitor_key_of_a_superuser_holds_only_monitor():
    held = privileges_of({"k": role("monitor")}, limited_by=SUPERUSER)
    assert held.has_cluster("monitor")
    for name in ("manage_api_key", "read_security", "manage_own_api_key", "all"):
        assert not held.has_cluster(name)
    assert held.cluster_privileges() == ["monitor"]


def test_a_key_of_an_owner_without_roles_holds_nothing():
    held = privileges_of({"k": role("all")}, limited_by={})
    assert not held.has_cluster("monitor")
    assert held.cluster_privileges() == []


def test_key_index_privileges_are_intersected_per_index():
    held = privileges_of(
        {"k": role(indices=[{"names": ["logs-*"], "privileges": ["write"]}])},
        limited_by={"r": role(indices=[{"names": ["logs-app-*"], "privileges": ["all"]}])},
    )
    assert held.has_index("logs-app-1", "index")
    assert not held.has_index("logs-db-1", "index")
    assert not held.has_index("logs-app-1", "read")


def test_key_index_privileges_do_not_combine_across_sides():
    held = privileges_of(
        {"k": role(indices=[{"names": ["*"], "privileges": ["write"]}])},
        limited_by={"r": role(indices=[{"names": ["*"], "privileges": ["read"]}])},
    )
    assert not held.has_index("logs", "read")
    assert not held.has_index("logs", "write")


def test_limited_cluster_privileges_for_display():
    held = privileges_of(
        {"k": role("manage_security")}, limited_by={"r": role("read_security", "manage_own_api_key")}
    )
    assert held.cluster_privileges() == ["manage_own_api_key", "read_security"]


@pytest.mark.parametrize("owner", [*RULE_PRIVILEGES, "none"])
@pytest.mark.parametrize("asked", ELASTICSEARCH_CLUSTER_PRIVILEGES)
def test_a_key_holds_what_both_its_descriptors_and_its_limited_by_imply(asked, owner):
    key = privileges_of({"k": role(asked)}, limited_by={"r": role(owner)})
    assert held_cluster(key) == grid_row(cluster_closure(asked) & cluster_closure(owner))


MONITOR_FAMILY = """
    monitor monitor_data_frame_transforms monitor_data_stream_global_retention monitor_inference monitor_ml
    monitor_rollup monitor_text_structure monitor_transform monitor_watcher transport_client
""".split()
# (key's role descriptors, limited_by, every cluster privilege the key holds): what only one side
# implies is never held.
KEY_INTERSECTIONS = {
    "admin key of an owner of own keys": (
        {"k": role("manage_api_key", "monitor")},
        {"r": role("manage_own_api_key", "read_security")},
        {"manage_own_api_key"},  # not manage_api_key, grant_api_key, monitor (key) nor read_security (owner)
    ),
    "security key of a reader of security": (
        {"k": role("manage_security")},
        {"r": role("read_security", "manage_own_api_key")},
        {"read_security", "manage_own_api_key"},
    ),
    "reader key of a security admin": (
        {"k": role("read_security")},
        {"r": role("manage_security")},
        {"read_security"},  # not manage_security, manage_api_key (owner only)
    ),
    "manage key of a monitor owner": (
        {"k": role("manage")},
        {"r": role("monitor", "manage_ilm")},
        {*MONITOR_FAMILY, "manage_ilm", "read_ilm"},  # not manage, cancel_task, manage_ml... (key only)
    ),
    "narrow key of a superuser": (
        {"k": role("monitor_ml", "manage_api_key")},
        {"r": role("all")},
        {"monitor_ml", "manage_api_key", "manage_own_api_key", "grant_api_key"},
    ),
    "all key of an api key admin": (
        {"k": role("all")},
        {"r": role("manage_api_key")},
        {"manage_api_key", "manage_own_api_key", "grant_api_key"},
    ),
    "disjoint sides": ({"k": role("manage_own_api_key")}, {"r": role("read_security")}, set()),
    "empty key descriptors": ({}, {"r": role("manage_api_key")}, {"manage_api_key", "manage_own_api_key",
                                                                  "grant_api_key"}),
    "key without cluster privileges": ({"k": role()}, {"r": role("all")}, set()),
    "several roles each side": (
        {"a": role("read_security"), "b": role("monitor")},
        {"x": role("manage_security"), "y": role("transport_client")},
        {"read_security", "transport_client"},  # per privilege, not per role
    ),
}


@pytest.mark.parametrize(("assigned", "limited_by", "expected"), KEY_INTERSECTIONS.values(),
                         ids=KEY_INTERSECTIONS.keys())
def test_a_key_holds_only_what_both_sides_grant(assigned, limited_by, expected):
    assert held_cluster(privileges_of(assigned, limited_by=limited_by)) == grid_row(expected)


INDEX_GRID = ["logs-app-1", "logs-db-1", "metrics-1"]
INDEX_GRID_PRIVILEGES = """
    read write index create_doc delete manage monitor view_index_metadata create_index
""".split()
WRITE_FAMILY = {"write", "index", "create_doc", "delete"}
MANAGE_FAMILY = {"manage", "monitor", "view_index_metadata", "create_index"}


def entry(names, *privileges):
    return {"names": names, "privileges": list(privileges)}


# (key's index entries, limited_by's index entries, every (index, privilege) of the grid held)
KEY_INDEX_INTERSECTIONS = {
    "write key of an owner of part of the indices": (
        [entry(["logs-*"], "write")],
        [entry(["logs-app-*"], "all")],
        {("logs-app-1", name) for name in WRITE_FAMILY},  # not read (owner only), not logs-db-1 (key only)
    ),
    "each side grants a different privilege per index": (
        [entry(["*"], "read", "view_index_metadata")],
        [entry(["logs-*"], "read"), entry(["metrics-*"], "view_index_metadata")],
        {("logs-app-1", "read"), ("logs-db-1", "read"), ("metrics-1", "view_index_metadata")},
    ),
    "all on one index of an owner who manages": (
        [entry(["logs-app-1"], "all")],
        [entry(["logs-*"], "manage")],
        {("logs-app-1", name) for name in MANAGE_FAMILY},
    ),
    "read and write on different sides": ([entry(["*"], "write")], [entry(["*"], "read")], set()),
    "regular expression on the key's side": (
        [entry(["/logs-.*-1/"], "read", "write")],
        [entry(["*"], "read"), entry(["logs-db-*"], "index")],
        {("logs-app-1", "read"), ("logs-db-1", "read"), ("logs-db-1", "index"), ("logs-db-1", "create_doc")},
    ),
}


@pytest.mark.parametrize(("assigned", "limited_by", "expected"), KEY_INDEX_INTERSECTIONS.values(),
                         ids=KEY_INDEX_INTERSECTIONS.keys())
def test_a_key_holds_only_the_index_privileges_both_sides_grant(assigned, limited_by, expected):
    key = privileges_of({"k": role(indices=assigned)}, limited_by={"r": role(indices=limited_by)})
    held = {
        (index, name) for index in INDEX_GRID for name in INDEX_GRID_PRIVILEGES if key.has_index(index, name)
    }
    assert held == expected


privilege_names = st.sampled_from(ELASTICSEARCH_INDEX_PRIVILEGES)
index_patterns = st.sampled_from("* logs-* logs-app-* metrics-* logs-app-1 /logs-.+/ l?gs*".split())
index_entries = st.fixed_dictionaries({
    "names": st.lists(index_patterns, min_size=1, max_size=2),
    "privileges": st.lists(privilege_names, min_size=1, max_size=2),
})


@settings(max_examples=100, deadline=None)
@given(st.lists(index_entries, min_size=1, max_size=3), st.lists(index_entries, max_size=3),
       st.sampled_from(["logs-app-1", "logs-db-1", "metrics-1", "other"]), privilege_names)
def test_a_key_never_exceeds_its_limited_by_on_indices(key_entries, owner_entries, index, privilege):
    limited_by = {"r": role(indices=owner_entries)}
    key = privileges_of({"k": role(indices=key_entries)}, limited_by=limited_by)
    if key.has_index(index, privilege):
        assert PrivilegeSet(limited_by).has_index(index, privilege)
        assert grants(indices=key_entries).has_index(index, privilege)


def regex_entry(count: int, start: int = 0) -> dict:
    names = [f"/logs-{number}-.*/" for number in range(start, start + count)]
    return {"names": names, "privileges": ["read"]}


def test_at_most_a_hundred_regular_expressions_are_compiled_for_one_request():
    """Each one may cost milliseconds to compile: a body full of them must not hold a worker."""
    wildcard = {"names": "x*", "privileges": ["read"]}
    accepted = validate_role_descriptors(
        {"a": {"indices": [regex_entry(51)]}, "b": {"indices": [regex_entry(49, 51), wildcard]}}
    )
    reason = refusal({"a": {"indices": [regex_entry(51)]}, "b": {"indices": [regex_entry(50, 51)]}})
    with pytest.raises(ValidationError) as one_role:
        validate_role_descriptor("big", {"indices": [regex_entry(60), regex_entry(41, 60)]})

    assert len(accepted["a"]["indices"][0]["names"]) == 51
    assert reason == one_role.value.reason == (
        "at most [100] regular expression index name patterns may be given at once"
    )
