"""SPEC §6: the API Keys page's search box reads Kibana's search-bar syntax into the query DSL of the
query API key API; bad input is a sentence for the page, never an exception of another kind."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apikeys.search_bar import SearchSyntaxError, parse

NAME_CONTAINS = {"wildcard": {"name": {"value": "*filebeat*", "case_insensitive": True}}}


def test_empty_search_is_no_query():
    assert parse("") is None
    assert parse("   ") is None


def test_free_text_matches_names_containing_it_in_any_case():
    assert parse("filebeat") == NAME_CONTAINS


def test_free_text_wildcards_are_literal():
    assert parse("a*b?c\\") == {"wildcard": {"name": {"value": "*a\\*b\\?c\\\\*", "case_insensitive": True}}}


def test_quoted_phrase_is_one_term():
    assert parse('"my key"') == {"wildcard": {"name": {"value": "*my key*", "case_insensitive": True}}}
    escaped = parse('"say \\"hi\\""')
    assert escaped == {"wildcard": {"name": {"value": '*say "hi"*', "case_insensitive": True}}}


def test_terms_side_by_side_must_all_match():
    bob = {"term": {"username": {"value": "bob", "case_insensitive": True}}}
    assert parse("filebeat owner:bob") == {"bool": {"filter": [NAME_CONTAINS, bob]}}
    assert parse("filebeat AND owner:bob") == parse("filebeat owner:bob")


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("name:filebeat*", {"wildcard": {"name": {"value": "filebeat*", "case_insensitive": True}}}),
        ("name:exact", {"term": {"name": {"value": "exact", "case_insensitive": True}}}),
        ('name:"my key"', {"term": {"name": {"value": "my key", "case_insensitive": True}}}),
        ("owner:bob", {"term": {"username": {"value": "bob", "case_insensitive": True}}}),
        ("username:bo*", {"wildcard": {"username": {"value": "bo*", "case_insensitive": True}}}),
        ("realm:file", {"term": {"realm_name": {"value": "file", "case_insensitive": False}}}),
        ("type:cross_cluster", {"term": {"type": {"value": "cross_cluster", "case_insensitive": False}}}),
        ("metadata.team:ops", {"term": {"metadata.team": {"value": "ops", "case_insensitive": False}}}),
        ("status:invalidated", {"term": {"invalidated": True}}),
    ],
)
def test_fields(text, query):
    assert parse(text) == query


def test_minus_leaves_out_what_matches():
    assert parse("-owner:bob") == {
        "bool": {"must_not": [{"term": {"username": {"value": "bob", "case_insensitive": True}}}]}
    }
    assert parse("-filebeat") == {"bool": {"must_not": [NAME_CONTAINS]}}


def test_or_binds_looser_than_side_by_side_and_parentheses_group():
    a, b, c = (parse(word) for word in "abc")
    b_or_c = {"bool": {"should": [b, c], "minimum_should_match": 1}}
    a_and_b = {"bool": {"filter": [a, b]}}
    assert parse("a b OR c") == {"bool": {"should": [a_and_b, c], "minimum_should_match": 1}}
    assert parse("a (b OR c)") == {"bool": {"filter": [a, b_or_c]}}
    assert parse("-(b OR c)") == {"bool": {"must_not": [b_or_c]}}


def test_or_quoted_or_in_lower_case_is_searched_for():
    assert parse('"OR"') == {"wildcard": {"name": {"value": "*OR*", "case_insensitive": True}}}
    assert parse("a or b") == {"bool": {"filter": [parse("a"), parse("or"), parse("b")]}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"unclosed', "A quote is not closed"),
        ('name:"unclosed', "A quote is not closed"),
        ("nosuch:value", "Unknown field \u201cnosuch\u201d: search by name, owner, realm, status, type or"),
        ("status:gone", "Unknown status \u201cgone\u201d: use active, expiring, expired or invalidated."),
        ("type:soap", "Unknown type \u201csoap\u201d: use rest or cross_cluster."),
        ("owner:", "Give a value after \u201cowner:\u201d."),
        ("owner: bob", "Give a value after \u201cowner:\u201d."),
        ("- owner:bob", "Give a search term after \u201c-\u201d"),
        ("OR a", "Put a search term on each side of \u201cOR\u201d."),
        ("a OR", "Put a search term on each side of \u201cOR\u201d."),
        ("a OR OR b", "Put a search term on each side of \u201cOR\u201d."),
        ("a AND", "Put a search term on each side of \u201cAND\u201d."),
        ("(a", "A parenthesis is not closed"),
        ("(", "A parenthesis is not closed"),
        ("a)", "A closing parenthesis \u201c)\u201d has no opening one."),
        ("()", "Empty parentheses"),
        ("(" * 9 + "a" + ")" * 9, "Too many nested parentheses"),
        ("a\x00b", "The search holds a character that cannot be searched for."),
        ("\ud800", "The search holds a character that cannot be searched for."),
        ("x" * 1001, "The search is too long: at most 1,000 characters."),
        ("metadata..team:ops", "The metadata key of \u201cmetadata..team\u201d cannot be searched."),
    ],
)
def test_bad_input_is_a_sentence_for_the_page(text, message):
    with pytest.raises(SearchSyntaxError) as raised:
        parse(text)
    assert raised.value.message.startswith(message)
    assert raised.value.message[0].isupper() and raised.value.message.endswith(".")


@given(st.text(max_size=60) | st.text(alphabet='ab:-()" ORAND*\\?\x00', max_size=40))
def test_any_text_is_a_query_or_a_syntax_error(text):
    try:
        query = parse(text)
    except SearchSyntaxError as error:
        assert error.message
    else:
        assert query is None or isinstance(query, dict)
