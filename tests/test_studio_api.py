"""The studio's HTTP API through FastAPI's test client: every endpoint, every class of bad
input (a 4xx with one JSON line, never a 500), the token and origin guards, and jobs run by a
real worker process."""

from __future__ import annotations

import dataclasses
import io
import json
import time

import pytest
from studio_support import PAINTING, PHOTO, tiny_gatys, wait_for

from impasto.methods.registry import METHODS, load_method, missing_requirement
from impasto.studio.app import Settings, create_app

pytest.importorskip("httpx", reason="the test client needs httpx (the dev extra)")
from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402


def png_bytes(width: int = 40, height: int = 30, colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """One studio with one real worker process for the module (a worker start imports torch)."""
    folder = tmp_path_factory.mktemp("studio")
    app = create_app(Settings(data_dir=folder, max_upload_bytes=200_000, max_pixels=250_000))
    with TestClient(app) as client:
        yield client


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


def wait_done(client, job_id: str, states=("done", "failed", "cancelled"), timeout=90) -> dict:
    return wait_for(lambda: (j := client.get(f"/api/jobs/{job_id}").json())["state"] in states
                    and j, timeout, f"job {job_id} to finish")  # fmt: skip


# -- the page and what it reads -----------------------------------------------------------------


def test_page_and_static_files_are_served(studio):
    page = studio.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert "/static/studio.js" in page.text
    assert studio.get("/static/studio.js").status_code == 200
    error_of(studio.get("/static/../app.py"), 404)


def test_info_lists_every_method_with_its_config_defaults(studio):
    info = studio.get("/api/info").json()
    methods = {m["name"]: m for m in info["methods"]}
    assert set(methods) == set(METHODS)
    assert info["default_method"] in methods
    for name, method in methods.items():
        assert method["available"] and method["why"] is None
        config = load_method(name).config_class()
        for field in method["fields"]:
            value = getattr(config, field["name"])
            if field["type"] != "text":  # the form's defaults are the CLI's (same dataclass)
                assert field["default"] == value, (name, field["name"])
        shown = {f["name"] for f in method["fields"]}
        assert "save_every" not in shown and "model" not in shown
    assert methods["fast"]["models"], "the shipped fast models are offered"
    assert {s["role"] for s in info["samples"]} == {"photo", "painting"}
    assert {t["kind"] for t in info["training"]} >= {"fast", "decoder"}


def test_samples_are_served_and_nothing_else(studio):
    info = studio.get("/api/info").json()
    for sample in info["samples"]:
        response = studio.get(sample["url"])
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    for name in ("nope.jpg", "..%2F__init__.py", "%2Fetc%2Fpasswd"):
        assert studio.get(f"/api/samples/{name}").status_code == 404


# -- uploads ----------------------------------------------------------------------------------


def test_an_upload_is_kept_under_a_generated_name_and_served_back(studio):
    data = png_bytes()
    response = studio.post("/api/uploads", files={"file": ("../../evil name.png", data)})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "image" and (body["width"], body["height"]) == (40, 30)
    assert body["name"] == "evil name.png" and body["id"].startswith("u-")
    served = studio.get(body["url"])
    assert served.content == data and served.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("content", "status", "words"),
    [
        (b"just some text, named like a picture", 415, "is not an image"),
        (b"", 400, "empty"),
        (png_bytes(600, 500), 413, "pixels"),  # 300,000 pixels over the 250,000 cap
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 64, 415, "is not an image"),  # a header and no image
    ],
    ids=["text", "empty", "too-many-pixels", "truncated-png"],
)
def test_bad_uploads_get_a_4xx_with_one_line(studio, content, status, words):
    response = studio.post("/api/uploads", files={"file": ("photo.png", content)})
    assert words in error_of(response, status)


def test_an_upload_over_the_byte_cap_is_refused_before_it_is_kept(studio, tmp_path):
    big = png_bytes(40, 30) + b"\0" * 300_000  # valid PNG, padded past the 200,000-byte cap
    before = set((studio.app.state.store.folder / "uploads").glob("*"))
    response = studio.post("/api/uploads", files={"file": ("big.png", big)})
    assert "larger than" in error_of(response, 413)
    assert set((studio.app.state.store.folder / "uploads").glob("*")) == before


def test_an_upload_without_a_file_field(studio):
    assert "no file" in error_of(studio.post("/api/uploads", data={"other": "x"}), 400)


def test_unknown_or_malformed_upload_ids_are_404(studio):
    for upload_id in ("u-0000000000000000", "..%2Fstudio.sqlite3", "u-../../x"):
        assert studio.get(f"/api/uploads/{upload_id}").status_code == 404


# -- job requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({**tiny_gatys(), "method": "nope"}, "unknown method"),
        ({**tiny_gatys(), "options": {"size": -4}}, "size: -4 is below the minimum"),
        ({**tiny_gatys(), "options": {"size": "big"}}, "size: 'big' is not a whole number"),
        ({**tiny_gatys(), "options": {"colour": 1}}, "unknown setting"),
        ({**tiny_gatys(), "options": {"preserve_color": "sepia"}}, "is not one of"),
        ({**tiny_gatys(), "content": ""}, "choose a photo"),
        ({**tiny_gatys(), "content": "u-0000000000000000"}, "upload the file again"),
        ({**tiny_gatys(), "content": "sample:../../etc/passwd"}, "upload the file again"),
        ({**tiny_gatys(), "styles": []}, "at least one style image"),
        ({**tiny_gatys(), "styles": "sample:x"}, "a list"),
        ({"kind": "stylize", "method": "fast", "content": PHOTO}, "needs a model"),
        ({"kind": "stylize", "method": "fast", "content": PHOTO, "model": "/etc"}, "no model"),
        ({"kind": "stylize", "method": "fast", "content": PHOTO,
          "model": "studio/j-0000000000000000"}, "no model"),
        ({"kind": "stylize", "method": "fast", "content": PHOTO, "model": "vangogh-bedroom-rt",
          "styles": [PAINTING]}, "takes no style images"),
        ({"kind": "dance"}, "unknown kind of job"),
        ({"kind": "train", "training": "fast", "style": PAINTING, "data": "/no/such/folder"},
         "is not a folder"),
        ({"kind": "train", "training": "juggle"}, "unknown training"),
        ({"kind": "train", "training": "fast", "style": PAINTING, "data": "/",
          "options": {"steps": 0}}, "steps: 0 is below the minimum"),
    ],
)  # fmt: skip
def test_bad_job_requests_are_422_with_the_reason(studio, body, words):
    assert words in error_of(studio.post("/api/jobs", json=body), 422)


def test_a_method_whose_models_are_not_here_is_refused_before_it_is_queued(studio, monkeypatch):
    # a fresh install with the diffusion extra: no model in the Hugging Face cache yet
    if missing_requirement("diffusion"):
        pytest.skip(f"diffusion {missing_requirement('diffusion')}")
    monkeypatch.setenv("HF_HUB_CACHE", "/nonexistent-hub-cache")
    body = {"kind": "stylize", "method": "diffusion", "content": PHOTO, "styles": [PAINTING]}
    words = error_of(studio.post("/api/jobs", json=body), 422)
    assert "is not on this machine: `impasto download sdxl` fetches it" in words
    assert "`impasto download ip-adapter-sdxl`" in words  # every missing model in one line
    assert all(job["method"] != "diffusion" for job in studio.get("/api/jobs").json()["jobs"])


def test_a_request_that_is_not_a_json_object_is_400(studio):
    bad = studio.post("/api/jobs", content=b"{not json", headers={"content-type": "x"})
    assert "not JSON" in error_of(bad, 400)
    assert "object" in error_of(studio.post("/api/jobs", json=[1, 2]), 400)


def test_unknown_jobs_are_404_and_unfinished_ones_have_no_result(studio):
    for path in (
        "/api/jobs/j-0000000000000000",
        "/api/jobs/..%2F..%2Fetc",
        "/api/jobs/j-0000000000000000/result",
        "/api/jobs/j-0000000000000000/preview",
    ):
        assert studio.get(path).status_code == 404, path  # fmt: skip
    assert studio.post("/api/jobs/j-0000000000000000/cancel").status_code == 404
    assert studio.delete("/api/jobs/j-0000000000000000").status_code == 404


# -- jobs run by the worker ---------------------------------------------------------------------


def test_a_job_runs_in_the_worker_with_previews_events_result_and_delete(studio):
    store = studio.app.state.store
    after = store.last_event_id()
    job = studio.post("/api/jobs", json=tiny_gatys(steps=16)).json()
    assert job["state"] == "queued" and job["result_url"] is None and job["output"] == "image"
    done = wait_done(studio, job["id"])
    assert done["state"] == "done", done["error"]
    assert {"content", "style", "tv"} <= set(done["progress"]["losses"])  # kept when done
    assert done["attempts"] == 1 and done["output"] == "image" and done["seconds"] > 0
    image = Image.open(io.BytesIO(studio.get(done["result_url"]).content))
    assert image.format == "PNG" and max(image.size) == 64
    preview = studio.get(done["preview_url"])
    assert preview.status_code == 200 and preview.content[:3] == b"\xff\xd8\xff"
    events = store.events_after(after, job["id"])
    states = [data["state"] for _id, _job, kind, data in events if kind == "state"]
    assert states == ["queued", "running", "done"]
    steps = [d["step"] for _i, _j, kind, d in events if kind == "progress" and d["kind"] == "step"]
    assert steps and steps == sorted(steps) and steps[-1] == steps[-1] > 1
    assert any(d.get("preview") for _i, _j, kind, d in events if kind == "progress")
    listed = [j["id"] for j in studio.get("/api/jobs").json()["jobs"]]
    assert job["id"] in listed
    assert studio.delete(f"/api/jobs/{job['id']}").status_code == 204
    assert studio.get(f"/api/jobs/{job['id']}").status_code == 404
    assert not list((store.folder / "results").glob(f"{job['id']}.*"))
    assert not (store.folder / "work" / job["id"]).exists()


def test_cancel_a_queued_job_at_once_and_a_running_one_within_seconds(studio):
    long = studio.post("/api/jobs", json=tiny_gatys(size=96, steps=5000)).json()
    queued = studio.post("/api/jobs", json=tiny_gatys()).json()
    cancelled = studio.post(f"/api/jobs/{queued['id']}/cancel").json()
    assert cancelled["state"] == "cancelled"
    wait_for(lambda: (studio.get(f"/api/jobs/{long['id']}").json().get("progress") or {})
             .get("step", 0) > 2, 60, "the long job to take steps")  # fmt: skip
    assert "cancel it first" in error_of(studio.delete(f"/api/jobs/{long['id']}"), 409)
    asked = time.monotonic()
    studio.post(f"/api/jobs/{long['id']}/cancel")
    ended = wait_done(studio, long["id"], timeout=20)
    assert ended["state"] == "cancelled" and time.monotonic() - asked < 10
    assert ended["result_url"] is None
    assert studio.get(f"/api/jobs/{queued['id']}").json()["started"] is None  # never ran


def test_a_failing_job_is_failed_with_its_reason(studio, tmp_path):
    photo = studio.post("/api/uploads", files={"file": ("p.png", png_bytes())}).json()
    job = studio.post("/api/jobs", json={**tiny_gatys(), "content": photo["id"]}).json()
    (studio.app.state.store.folder / "uploads" / f"{photo['id']}.png").unlink()  # gone since
    ended = wait_done(studio, job["id"])
    assert ended["state"] == "failed" and "upload the file again" in ended["error"]


def test_the_event_stream_resumes_after_the_last_event_id(studio):
    store = studio.app.state.store
    start = store.last_event_id()
    job = studio.post("/api/jobs", json=tiny_gatys(steps=8)).json()
    wait_done(studio, job["id"])
    seen = []
    with studio.stream("GET", f"/api/events?job={job['id']}",
                       headers={"Last-Event-ID": str(start)}) as stream:  # fmt: skip
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if seen[-1].get("state") == "done":
                    break
    expected = [d for _i, _j, _k, d in store.events_after(start, job["id"])]
    assert [d.get("state") for d in seen] == [d.get("state") for d in expected]
    assert seen[-1]["result_url"] == f"/api/jobs/{job['id']}/result"


# -- guards -----------------------------------------------------------------------------------


def test_a_token_is_required_by_every_request_when_set(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, token="s3cret", start_workers=False))
    with TestClient(app) as client:
        for path in ("/api/info", "/api/jobs", "/static/studio.js", "/api/events"):
            assert "token" in error_of(client.get(path), 401)
        page = client.get("/")  # a person opening the bare address reads why, not JSON
        assert page.status_code == 401 and "?token=" in page.text
        assert page.headers["content-type"].startswith("text/html")
        assert client.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert (
            client.get("/api/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        )
        page = client.get("/?token=s3cret")
        assert page.status_code == 200 and "impasto_token" in page.headers["set-cookie"]
        assert client.get("/api/info").status_code == 200  # the cookie the page got


def test_loopback_refuses_other_host_names_and_other_sites_writes(tmp_path):
    app = create_app(Settings(data_dir=tmp_path, check_host=True, start_workers=False))
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        assert client.get("/api/jobs").status_code == 200
        rebinding = client.get("/api/jobs", headers={"host": "attacker.example:8765"})
        assert "127.0.0.1 only" in error_of(rebinding, 403)
        other_site = client.post("/api/jobs", json=tiny_gatys(),
                                 headers={"origin": "http://attacker.example"})  # fmt: skip
        assert "other sites" in error_of(other_site, 403)


def test_every_config_field_type_is_accepted_from_the_form(studio):
    """Lists and NAME:WEIGHT maps come from text inputs; the request keeps what was sent."""
    body = tiny_gatys(style_blend="1, 2", style_layers="stage2:1 stage3:0.5")
    body["styles"] = [PAINTING, PAINTING]
    response = studio.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    assert response.json()["request"]["options"]["style_blend"] == "1, 2"
    studio.post(f"/api/jobs/{response.json()['id']}/cancel")
    fields = {f.name for f in dataclasses.fields(load_method("gatys").config_class)}
    assert {"style_blend", "style_layers"} <= fields


# -- videos and trainings go through the same queue ---------------------------------------------


def test_a_video_upload_and_job_make_a_playable_stylised_video(studio, tmp_path):
    pytest.importorskip("av", reason="the video extra (av) is not installed")
    from test_video_cli import make_clip

    from impasto import video

    clip = make_clip(tmp_path / "clip.mp4", audio_seconds=None)
    upload = studio.post("/api/uploads", files={"file": ("clip.mp4", clip.read_bytes())})
    assert upload.status_code == 201, upload.text
    assert upload.json()["kind"] == "video"
    body = {**tiny_gatys(size=32, steps=2), "content": upload.json()["id"], "temporal": 0.5}
    bad = studio.post("/api/jobs", json={**body, "temporal": 3})
    assert "between 0 and 1" in error_of(bad, 422)
    job = studio.post("/api/jobs", json=body).json()
    done = wait_done(studio, job["id"], timeout=120)
    assert done["state"] == "done" and done["output"] == "video", done["error"]
    result = studio.get(done["result_url"])
    assert result.headers["content-type"] == "video/mp4"
    out = tmp_path / "out.mp4"
    out.write_bytes(result.content)
    frames = video.probe(clip).frames
    assert video.probe(out).frames == frames
    events = studio.app.state.store.events_after(0, job["id"])
    counted = [d for _i, _j, kind, d in events if kind == "progress" and d["kind"] == "item"]
    assert counted and counted[-1]["step"] == counted[-1]["total"] == frames  # the bar: frames
    painting = studio.post("/api/jobs", json={**tiny_gatys(), "styles": [upload.json()["id"]]})
    assert "must be an image" in error_of(painting, 422)


def test_a_training_job_writes_a_model_that_downloads_as_a_zip(studio, tmp_path):
    import zipfile

    from helpers import write_image

    for index in range(3):
        write_image(tmp_path / "photos" / f"{index}.png", index)
    style = studio.post("/api/uploads", files={"file": ("style.png", png_bytes(48, 48))}).json()
    options = {"size": 24, "batch": 2, "steps": 3, "channels": 4, "residual_blocks": 1,
               "backbone": "tiny", "preview_every": 0}  # fmt: skip
    body = {"kind": "train", "training": "fast", "style": style["id"],
            "data": str(tmp_path / "photos"), "options": options}  # fmt: skip
    job = studio.post("/api/jobs", json=body).json()
    assert job["title"] == "train fast"
    done = wait_done(studio, job["id"], timeout=120)
    assert done["state"] == "done" and done["output"] == "model", done["error"]
    archive = studio.get(done["result_url"])
    assert archive.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
    assert {"config.json", "model.safetensors"} <= set(names)
    assert done["inputs"]["styles"] == [f"/api/uploads/{style['id']}"]
    fast = next(m for m in studio.get("/api/info").json()["methods"] if m["name"] == "fast")
    trained = f"studio/{job['id']}"
    assert trained in fast["models"]  # the page offers the model it just trained
    use = {"kind": "stylize", "method": "fast", "content": PHOTO, "model": trained,
           "options": {"size": 32}}  # fmt: skip
    painted = wait_done(studio, studio.post("/api/jobs", json=use).json()["id"])
    assert painted["state"] == "done", painted["error"]


def test_an_unexpected_error_is_a_500_with_one_line_and_no_traceback(tmp_path, monkeypatch):
    from impasto.studio import forms

    def broken(*args, **kwargs):
        raise RuntimeError("a bug\nwith a second line")

    monkeypatch.setattr(forms, "describe_methods", broken)
    app = create_app(Settings(data_dir=tmp_path, start_workers=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        message = error_of(client.get("/api/info"), 500)
    assert message.startswith("internal error: RuntimeError") and "a bug" not in message
