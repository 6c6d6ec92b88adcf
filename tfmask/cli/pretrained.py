"""``tfmask pretrained``: download pretrained weights into pretrained/ (needs network)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("pretrained", help="download pretrained weights (the only command "
                       "that uses the network)", description=__doc__)
    p.add_argument("name", nargs="?", help="checkpoint to fetch; omit to list them")
    p.add_argument("--dest", default="pretrained", help="folder (default: %(default)s)")
    p.add_argument("--base-url", help="download from this mirror instead")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.modeling.pretrained import CHECKPOINTS, download

    if not args.name:
        for name, ckpt in sorted(CHECKPOINTS.items()):
            print(f"{name}: {ckpt.base_url}\n  use: {ckpt.usage}")
        return 0
    files = download(args.name, args.dest, args.base_url)
    print(f"{args.name}: {len(files)} files in {files[0].parent}")
    print(f"use: {CHECKPOINTS[args.name].usage}")
    return 0
