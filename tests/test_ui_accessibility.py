"""What assistive technology reads from the server-rendered pages: how a table is sorted, and which
field of a form is wrong and why."""

import re
from html.parser import HTMLParser

import pytest

pytestmark = pytest.mark.django_db

USERS = "/app/management/security/users"


class Elements(HTMLParser):
    """Every element's attributes, in document order, and the text inside each element with an id."""

    def __init__(self, html: str):
        super().__init__()
        self.elements, self.text_by_id, self.open_ids = [], {}, []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attributes = {"tag": tag, **{name: value or "" for name, value in attrs}}
        self.elements.append(attributes)
        if "id" in attributes and tag not in ("input", "br", "img"):
            self.text_by_id[attributes["id"]] = ""
            self.open_ids.append((tag, attributes["id"]))

    def handle_endtag(self, tag):
        if self.open_ids and self.open_ids[-1][0] == tag:
            self.open_ids.pop()

    def handle_data(self, data):
        for _, element_id in self.open_ids:
            self.text_by_id[element_id] += data

    def where(self, **wanted) -> list[dict]:
        return [element for element in self.elements if all(element.get(k) == v for k, v in wanted.items())]


def test_the_sorted_column_of_a_table_says_how_it_is_sorted_and_each_link_which_way_it_sorts(
    client_for, users
):
    response = client_for(users["superuser"]).get(f"{USERS}?sort=-username", secure=True)
    html = response.content.decode()
    assert re.findall(r'aria-sort="(\w+)"', html) == ["descending"]
    page = Elements(html)
    sorted_header = page.where(tag="th", **{"aria-sort": "descending"})[0]
    assert "desc" in sorted_header["class"].split()
    links = [element for element in page.elements if element.get("aria-describedby", "").startswith("sort-")]
    # User name sorts ascending next; every other sortable column ascending first.
    assert [link["aria-describedby"] for link in links] == ["sort-ascending"] * len(links) and len(links) >= 4
    assert page.text_by_id["sort-ascending"] == "Sorts ascending"
    assert page.where(id="sort-ascending")[0]["hidden"] == ""


def test_an_invalid_field_is_marked_invalid_and_described_by_its_error(client_for, users, make_user):
    make_user("alice", password="correct-horse-battery")
    response = client_for(users["security_admin"]).post(
        f"{USERS}/default_native/alice/password",
        {"password": "new-secret-pass", "password_confirm": "something else"},
        secure=True,
    )
    assert response.status_code == 400
    page = Elements(response.content.decode())
    invalid = page.where(tag="input", **{"aria-invalid": "true"})
    assert [field["name"] for field in invalid] == ["password_confirm"]
    described_by = invalid[0]["aria-describedby"].split()
    assert "id_password_confirm_error" in described_by
    assert all(element_id in page.text_by_id for element_id in described_by)
    assert page.text_by_id["id_password_confirm_error"].strip() == "Passwords do not match."
