"""``shelfsense fleet …`` and ``shelfsense cloud …`` on a real SQLite file, through the CLI entry."""

from __future__ import annotations

import json

import pytest

from shelfsense.cli import build_parser, main


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_fleet_keys_and_devices_round_trip(tmp_path, capsys) -> None:
    db = ["--database-url", f"sqlite:///{tmp_path / 'c.db'}"]
    assert run(capsys, "fleet", "stores", "add", "store-1", "--name", "One", *db)[0] == 0
    assert run(capsys, "fleet", "stores", "add-bay", "store-1", "bay-1", *db)[0] == 0
    code, out = run(
        capsys,
        "fleet",
        "stores",
        "add-slot",
        "store-1",
        "bay-1",
        "2",
        "--sku",
        "SKU-9",
        "--unit-grams",
        "410",
        *db,
    )
    assert code == 0 and json.loads(out)["sku"] == "SKU-9"
    code, out = run(
        capsys,
        "fleet",
        "devices",
        "add",
        "unit-1",
        "--store",
        "store-1",
        "--bay",
        "bay-1",
        "--key",
        *db,
    )
    made = json.loads(out)
    assert code == 0 and made["token"].startswith("ssk_")
    assert (
        run(
            capsys, "fleet", "devices", "add", "unit-2", "--store", "store-1", "--bay", "nope", *db
        )[0]
        == 2
    )
    code, out = run(capsys, "fleet", "keys", "create", "--role", "backend", "--name", "shop", *db)
    backend = json.loads(out)
    code, out = run(capsys, "fleet", "keys", "list", *db)
    listed = json.loads(out)
    assert {k["key_id"] for k in listed} == {made["key_id"], backend["key_id"]}
    assert "token" not in out and backend["token"] not in out
    assert run(capsys, "fleet", "keys", "revoke", backend["key_id"], *db)[0] == 0
    assert len(json.loads(run(capsys, "fleet", "keys", "list", *db)[1])) == 1
    assert len(json.loads(run(capsys, "fleet", "keys", "list", "--all", *db)[1])) == 2
    assert (
        run(capsys, "fleet", "keys", "create", "--role", "unit", *db)[0] == 2
    )  # unit needs --device
    code, out = run(capsys, "fleet", "devices", "list", "--json", *db)
    assert [d["device_id"] for d in json.loads(out)] == ["unit-1"]
    code, out = run(capsys, "fleet", "devices", "list", *db)
    assert code == 0 and out.splitlines()[0].split()[:3] == ["UNIT", "STORE/BAY", "STATE"]
    assert out.splitlines()[1].split()[:3] == ["unit-1", "store-1/bay-1", "unknown"]
    broker, conf = tmp_path / "broker", tmp_path / "mosquitto.conf"
    plugin = tmp_path / "mosquitto_dynamic_security.so"
    plugin.touch()
    code, _ = run(
        capsys,
        "fleet",
        "devices",
        "broker-files",
        "--dir",
        str(broker),
        "--conf",
        str(conf),
        "--dynsec-plugin",
        str(plugin),
        "--unit-listener",
        "0.0.0.0:8883",
        *db,
    )
    assert code == 0 and (broker / "units.passwd").read_text().startswith("unit-1:$7$")
    assert "listener 8883 0.0.0.0" in conf.read_text().splitlines()
    out_file = tmp_path / "labels.jsonl"
    assert run(capsys, "cloud", "export-labels", str(out_file), *db)[0] == 0
    assert out_file.read_text() == ""


def test_cloud_group_has_serve_migrate_and_train(tmp_path) -> None:
    from cloud import service_cli, train_cli

    parser = build_parser()
    cloud = parser._subparsers._group_actions[0].choices["cloud"]  # type: ignore[union-attr]
    names = set(cloud._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert names == {"serve", "migrate", "mqtt-ingest", "export-labels", "train"}
    db = f"sqlite:///{tmp_path / 'c.db'}"
    args = parser.parse_args(
        ["cloud", "train", "--from-store", "--database-url", db, "--out", str(tmp_path / "o")]
    )
    assert args.func is train_cli.run
    assert args.from_store and args.database_url == db and args.data is None
    assert (args.teacher, args.student, args.min_labelled) == ("small", "student", 40)
    args = parser.parse_args(
        [
            "cloud",
            "train",
            "--data",
            "a.jsonl",
            "--data",
            "b.jsonl",
            "--out",
            "o",
            "--teacher",
            "tiny",
            "--epochs",
            "0.5",
        ]
    )
    assert [str(p) for p in args.data] == ["a.jsonl", "b.jsonl"] and not args.from_store
    assert (args.teacher, args.epochs) == ("tiny", 0.5)
    assert parser.parse_args(["cloud", "serve", "--port", "9"]).func is service_cli.cmd_serve
    for bad in (
        ["cloud", "train", "--out", "o"],  # no source of windows
        ["cloud", "train", "--data", "a.jsonl", "--from-store", "--out", "o"],  # two
        ["cloud", "train", "--data", "a.jsonl"],  # no --out
    ):
        with pytest.raises(SystemExit) as err:
            parser.parse_args(bad)
        assert err.value.code == 2, bad
