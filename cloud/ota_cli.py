"""``shelfsense fleet tuf|models|rollouts`` and ``fleet devices tag``: the operator's OTA commands.

They work on the store and the TUF repository directly, where the service runs (the
repository folder is ``tuf_dir`` of the settings, or ``--tuf-dir``). The root and
targets keys are read from ``--keys-dir`` only for the commands that need them
(``tuf init|rotate``, ``models publish``), so they can stay on removable media.
Desired states that a rollout command changes are published to the broker when the
settings name one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud.claims_cli import duration

_SHARE = re.compile(r"^(\d{1,3}(?:\.\d+)?)%$")


def share(text: str) -> float:
    """``5%`` as 0.05 (argparse type)."""
    match = _SHARE.match(text.strip())
    if match is None or float(match[1]) > 100:
        raise argparse.ArgumentTypeError(f"{text!r}: give a percentage like 5%")
    return float(match[1]) / 100


def register(fleet_sub: Any, db_args: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add ``fleet tuf``, ``fleet models``, ``fleet rollouts`` and ``fleet devices tag``."""

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        db_args(p)
        p.add_argument("--tuf-dir", type=Path, default=None, help="TUF repository (settings)")
        return p

    tuf = fleet_sub.add_parser("tuf", help="the TUF repository that signs model bundles")
    ts = tuf.add_subparsers(dest="tuf_command", metavar="TUFCOMMAND", required=True)
    p = common(ts.add_parser("init", help="make the repository and its four keys"))
    p.add_argument("--keys-dir", type=Path, required=True, help="where root and targets keys go")
    p.set_defaults(func=cmd_tuf_init)
    p = common(ts.add_parser("rotate", help="a new root key: root N+1 signed by old and new"))
    p.add_argument("--keys-dir", type=Path, required=True, help="holds the current root.pem")
    p.add_argument("--new-keys-dir", type=Path, required=True, help="where the new root.pem goes")
    p.set_defaults(func=cmd_tuf_rotate)
    p = common(ts.add_parser("refresh", help="re-sign snapshot and timestamp now"))
    p.set_defaults(func=cmd_tuf_refresh)

    models = fleet_sub.add_parser("models", help="the model registry")
    ms = models.add_subparsers(dest="models_command", metavar="MODELSCOMMAND", required=True)
    p = common(ms.add_parser("publish", help="register a gated, signed bundle from `cloud train`"))
    p.add_argument("dir", type=Path, help="the bundle, or the --out folder of `cloud train`")
    p.add_argument("--keys-dir", type=Path, required=True, help="holds the TUF targets.pem")
    p.add_argument(
        "--trusted-key", type=Path, default=None, help="bundle signing public key (settings)"
    )
    p.set_defaults(func=cmd_models_publish)
    p = common(ms.add_parser("list", help="published versions"))
    p.set_defaults(func=cmd_models_list)
    p = common(ms.add_parser("show", help="one version with metrics and training data"))
    p.add_argument("version", type=int)
    p.set_defaults(func=cmd_models_show)

    ro = fleet_sub.add_parser("rollouts", help="roll a model version out in phases")
    rs = ro.add_subparsers(dest="rollouts_command", metavar="ROLLOUTSCOMMAND", required=True)
    p = common(rs.add_parser("create", help="start a rollout (the canary gets it at once)"))
    p.add_argument("--model", type=int, required=True, help="published version")
    p.add_argument("--phases", default="canary:2,10%,50%,100%")
    p.add_argument("--group", default=None, help="only units of this group")
    p.add_argument("--min-soak", type=duration, default=duration("2h"), help="e.g. 2h, 30m")
    p.add_argument("--abort-failed", type=share, default=0.05, help="e.g. 5%%")
    p.add_argument(
        "--min-shadow-agreement",
        type=share,
        default=None,
        help="canary units must agree this much in shadow (every head), e.g. 95%%",
    )
    p.add_argument(
        "--shadow-windows",
        type=int,
        default=None,
        help="live windows the canary shadows the candidate on first "
        "(default 200 with --min-shadow-agreement, else none)",
    )
    p.add_argument(
        "--max-labelled-drop",
        type=share,
        default=None,
        help="the canary promotes only when the candidate's labelled accuracy trails the "
        "current model's by at most this, e.g. 2%%",
    )
    p.add_argument("--min-labelled-windows", type=int, default=20, help="per head, first")
    p.set_defaults(func=cmd_rollouts_create)
    p = common(rs.add_parser("list", help="rollouts, newest first"))
    p.set_defaults(func=cmd_rollouts_list)
    for name, text in (
        ("show", "one rollout, units per phase and state"),
        ("pause", "stop promoting"),
        ("resume", "promote again"),
        ("halt", "stop and put touched units back"),
        ("rollback", "put every touched unit back, also after completion"),
        ("tick", "advance rollouts now"),
    ):
        p = common(rs.add_parser(name, help=text))
        p.add_argument("rollout_id", type=int)
        p.set_defaults(func=cmd_rollouts_action, action=name)

    devices = fleet_sub.choices["devices"]
    ds = next(a for a in devices._actions if isinstance(a, argparse._SubParsersAction))
    p = common(ds.add_parser("tag", help="put a unit in a group (rollouts may target one)"))
    p.add_argument("device_id")
    p.add_argument("group")
    p.set_defaults(func=cmd_devices_tag)


def _settings(args: argparse.Namespace) -> Any:
    from cloud.cli_common import settings_of

    settings = settings_of(args)
    if args.tuf_dir is not None:
        settings = settings.model_copy(update={"tuf_dir": args.tuf_dir})
    return settings


def _repo(args: argparse.Namespace) -> Any:
    from cloud.tuf_repo import TufRepository

    return TufRepository.from_settings(_settings(args))


def _store(args: argparse.Namespace) -> Any:
    from cloud.cli_common import open_store_of

    return open_store_of(args)


def cmd_tuf_init(args: argparse.Namespace) -> int:
    """Make the repository; say which files go where."""
    from cloud.tuf_repo import init_repository

    repo = _repo(args)
    root = init_repository(repo, args.keys_dir)
    print(f"TUF repository made in {repo.path}")
    print(f"  root and targets keys: {args.keys_dir}/root.pem, targets.pem (keep them offline)")
    print(f"  snapshot and timestamp keys: {repo.keys_dir} (the service signs with them)")
    print(f"  trusted root for units: {root}")
    return 0


def cmd_tuf_rotate(args: argparse.Namespace) -> int:
    """Rotate the root key."""
    from securesystemslib.signer import CryptoSigner

    from cloud.tuf_repo import key_file, load_signer, save_signer

    old = load_signer(key_file(args.keys_dir, "root"))
    new_path = key_file(args.new_keys_dir, "root")
    if new_path.exists():
        print(f"{new_path} exists; give an empty --new-keys-dir", file=sys.stderr)
        return 1
    new = CryptoSigner.generate_ed25519()
    args.new_keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    save_signer(new_path, new)
    version = _repo(args).rotate_root(old, new)
    print(f"root version {version} signed by the old and the new root key")
    print(f"  new root key: {new_path}; the old one may now be destroyed")
    return 0


def cmd_tuf_refresh(args: argparse.Namespace) -> int:
    """Re-sign snapshot and timestamp."""
    from tuf.api.metadata import Timestamp

    repo = _repo(args)
    repo.refresh(force=True)
    ts = repo.load(Timestamp).signed
    print(f"timestamp version {ts.version}, expires {ts.expires.isoformat()}")
    return 0


def cmd_models_publish(args: argparse.Namespace) -> int:
    """Check and publish a bundle."""
    from cloud import registry
    from cloud.tuf_repo import key_file, load_signer
    from models.bundle import load_public_key

    settings = _settings(args)
    trusted = args.trusted_key or settings.signing_public_key_file
    if trusted is None:
        print("give --trusted-key or set signing_public_key_file", file=sys.stderr)
        return 2
    candidate = registry.read_candidate(args.dir, [load_public_key(Path(trusted).read_bytes())])
    signer = load_signer(key_file(args.keys_dir, "targets"))
    with _store(args).writer.begin() as conn:
        model = registry.publish(conn, _repo(args), candidate, signer)
    print(f"published model v{model.version}: {model.target_name}, {model.bytes} bytes")
    print(f"  sha256 {model.sha256}")
    print(f"  gates passed: {len(candidate.gates)}; training: {_facts(model.training)}")
    return 0


def _facts(d: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in d.items()) or "-"


def cmd_models_list(args: argparse.Namespace) -> int:
    """A table of published versions."""
    from cloud import registry

    with _store(args).engine.connect() as conn:
        found = registry.list_models(conn)
    print(f"{'version':>7}  {'bytes':>9}  {'published':<16}  {'student int8 F1':<22}  training")
    for m in found:
        f1 = m.metrics.get("student int8") or {}
        scores = " ".join(f"{k[:3]} {v}" for k, v in f1.items()) or "-"
        when = m.published_at.strftime("%Y-%m-%d %H:%M")
        print(f"{m.version:>7}  {m.bytes:>9}  {when:<16}  {scores:<22}  {_facts(m.training)}")
    return 0


def cmd_models_show(args: argparse.Namespace) -> int:
    """One version as JSON."""
    from cloud import registry

    with _store(args).engine.connect() as conn:
        model = registry.get_model(conn, args.version)
    print(json.dumps(model.model_dump(mode="json"), indent=2))
    return 0


def _publish(args: argparse.Namespace, changed: list[Any]) -> None:
    from cloud.desired_publish import DesiredPublisher

    publisher = DesiredPublisher.from_settings(_settings(args)) if changed else None
    if publisher is None:
        return
    publisher.start()
    try:
        for state in changed:
            publisher.publish(state)
    finally:
        publisher.stop()


def _show(r: Any) -> None:
    print(
        f"rollout {r.rollout_id}: model v{r.model_version} {r.status}, phase {r.phase} "
        f"({r.phases}), {r.units} units{' in ' + r.group if r.group else ''}"
    )
    if r.reason:
        print(f"  reason: {r.reason}")
    if r.shadow_windows:
        need = r.min_shadow_agreement
        print(
            f"  canary shadows {r.shadow_windows} windows"
            + (f", needs agreement {need:.0%} on every head" if need is not None else "")
        )
    if r.max_labelled_drop is not None:
        print(
            f"  canary needs labelled accuracy within {r.max_labelled_drop:.0%} of the current "
            f"model's, over at least {r.min_labelled_windows} labelled windows per head"
        )
    for h, f in sorted(r.labelled.items()):
        cur, cand = f.current_accuracy, f.candidate_accuracy
        print(
            f"  labelled {h}: {f.windows} windows, current "
            f"{'-' if cur is None else f'{cur:.1%}'}, candidate "
            f"{'-' if cand is None else f'{cand:.1%}'}"
        )
    for p in r.per_phase:
        states = ", ".join(f"{k} {v}" for k, v in p.states.items() if v) or "none"
        print(f"  phase {p.phase} {p.name:<9} {p.units:>4} units: {states}")
        for why, n in p.reasons.items():
            print(f"      {n} x {why}")
        for f in p.shadow:
            heads = ", ".join(f"{h} {a:.1%}" for h, a in sorted(f.heads.items()))
            ratio = "" if f.latency_ratio is None else f", latency {f.latency_ratio:.2f}x"
            print(f"      shadow {f.device_id}: {heads} over {f.windows} windows{ratio}")


def cmd_rollouts_create(args: argparse.Namespace) -> int:
    """Start a rollout and tick it once."""
    from cloud import rollouts
    from cloud.ota_schemas import RolloutCreate

    body = RolloutCreate(
        model_version=args.model,
        phases=args.phases,
        group=args.group,
        min_soak_s=args.min_soak.total_seconds(),
        abort_failed=args.abort_failed,
        min_shadow_agreement=args.min_shadow_agreement,
        shadow_windows=args.shadow_windows,
        max_labelled_drop=args.max_labelled_drop,
        min_labelled_windows=args.min_labelled_windows,
    )
    store = _store(args)
    with store.writer.begin() as conn:
        rollout_id = rollouts.create_rollout(conn, body)
    _publish(args, rollouts.tick(store))
    with store.engine.connect() as conn:
        _show(rollouts.get_rollout(conn, rollout_id))
    return 0


def cmd_rollouts_list(args: argparse.Namespace) -> int:
    """Every rollout."""
    from cloud import rollouts

    with _store(args).engine.connect() as conn:
        for r in rollouts.list_rollouts(conn):
            _show(r)
    return 0


def cmd_rollouts_action(args: argparse.Namespace) -> int:
    """show, pause, resume, halt, rollback or tick."""
    from cloud import rollouts

    store = _store(args)
    if args.action == "tick":
        _publish(args, rollouts.tick(store))
    elif args.action != "show":
        _publish(args, rollouts.command(store, args.rollout_id, args.action))
    with store.engine.connect() as conn:
        _show(rollouts.get_rollout(conn, args.rollout_id))
    return 0


def cmd_devices_tag(args: argparse.Namespace) -> int:
    """Put a unit in a group."""
    from cloud import rollouts
    from cloud.ota_schemas import GroupTag

    with _store(args).writer.begin() as conn:
        groups = rollouts.tag_device(conn, args.device_id, GroupTag(group=args.group))
    print(f"{args.device_id}: groups {', '.join(groups)}")
    return 0
