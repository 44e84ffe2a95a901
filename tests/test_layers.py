"""The layer catalogue (app/layers.py) is the one list: the map script's config, the admin form,
embed links and their tokens all come from it, so whatever the form offers can be published."""

import json
import re

import pytest

from app import create_app
from app.layers import BY_KEY, EMBEDDABLE, LAYERS
from app.store import Store, accounts

from .conftest import ensure_user, signed_in
from .test_access import form_token


@pytest.fixture(scope="module")
def app(analyzed_store: Store):
    return create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True})


def _map_config(page: str) -> dict:
    """The configuration the map page hands to hongtu-map.js."""
    found = re.search(r"Hongtu\.init\([^,]+,\s*[^,]+,\s*\{[^}]*\},\s*(\{.*\})\);", page, re.S)
    return json.loads(found.group(1))


def test_the_map_script_is_configured_from_the_catalogue(app):
    config = _map_config(signed_in(app).get("/").get_data(as_text=True))
    assert [(spec["key"], spec["kind"], spec["style"]) for spec in config["layers"]] == [
        (layer.key, layer.kind, layer.style) for layer in LAYERS
    ]
    assert config["minZoom"] == {layer.key: layer.min_zoom for layer in LAYERS if layer.key != "orgs"}


def test_every_layer_the_admin_form_offers_can_be_published(app, analyzed_store):
    """The form used to offer gaps500, sites, pairings and branches, which the token check
    refused: publishing a link with them failed."""
    admin = signed_in(app, "admin")
    page = admin.get("/admin/").get_data(as_text=True)
    offered = re.findall(r'name="layers" value="([^"]+)"', page)
    assert offered == list(EMBEDDABLE) and "orgs_clusters" not in offered
    answer = admin.post(
        "/admin/tokens",
        data={"csrf_token": form_token(admin, "/admin/"), "layers": offered, "days": "1"},
    )
    assert answer.status_code == 200
    link = re.search(r'id="ht-published" readonly size="80" value="([^"]+)"', answer.get_data(as_text=True))
    token = re.search(r"token=([^&]+)", link.group(1).replace("&amp;", "&")).group(1)
    anonymous = app.test_client()
    assert anonymous.get(f"/embed?token={token}").status_code in (200, 302)
    for key in offered:
        answer = anonymous.get(f"/map/data/{key}?bbox=102.3,24.5,103.5,26.0&zoom=15&token={token}")
        assert answer.status_code == 200, key


def test_tokens_refuse_what_the_catalogue_does_not_publish(analyzed_store):
    admin = ensure_user(analyzed_store)["username"]
    assert not BY_KEY["orgs_clusters"].embeddable and BY_KEY["orgs_clusters"].why_not
    for layers in (["orgs_clusters"], ["ledger"], ["orgs", "secretaries"]):
        with pytest.raises(accounts.AccountError):
            accounts.issue_token(analyzed_store, "embed", admin, layers=layers, days=1)
    assert accounts.issue_token(analyzed_store, "embed", admin, layers=list(EMBEDDABLE), days=1)
