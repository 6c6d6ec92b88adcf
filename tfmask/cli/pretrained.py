"""``tfmask pretrained``: download pretrained weights into pretrained/ (needs network).

torchvision's COCO Mask R-CNN weights are converted into a tfmask checkpoint
folder as well; ``--from FILE`` converts a copy downloaded by hand.
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("pretrained", help="download pretrained weights (the only command "
                       "that uses the network)", description=__doc__)
    p.add_argument("name", nargs="?", help="checkpoint to fetch; omit to list them")
    p.add_argument("--dest", default="pretrained", help="folder (default: %(default)s)")
    p.add_argument("--base-url", help="download from this mirror instead")
    p.add_argument("--from", dest="source", metavar="FILE",
                   help="torchvision weights: convert this .pth, downloaded by hand (its "
                        "SHA-256 is checked), instead of downloading")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfmask.errors import ConfigError
    from tfmask.modeling.pretrained import CHECKPOINTS, download

    if not args.name:
        for name, ckpt in sorted(CHECKPOINTS.items()):
            print(f"{name}: {ckpt.base_url}\n  use: {ckpt.usage}")
        return 0
    from tfmask.modeling.torchvision.download import PUBLISHED, SOURCE, VERSIONS

    if args.name in VERSIONS:
        from tfmask.modeling.torchvision.download import fetch_and_convert

        record = fetch_and_convert(args.name, args.dest, args.source, args.base_url)
        aps = PUBLISHED[args.name]
        print(f"{args.name}: torchvision Mask R-CNN R50-FPN {record['version']} converted "
              f"({record['assigned']} tensors, {record['seconds']:.0f} s, peak RSS "
              f"{record['peak_rss_mb']:.0f} MB) into {args.dest}/{args.name}/")
        print(f"published COCO val2017: box AP {aps['box_ap']}, mask AP {aps['mask_ap']} "
              f"({SOURCE})")
    elif args.source:
        raise ConfigError(f"--from converts torchvision weights ({', '.join(sorted(VERSIONS))}); "
                          f"for {args.name} put the files in {args.dest}/{args.name}/")
    else:
        files = download(args.name, args.dest, args.base_url)
        print(f"{args.name}: {len(files)} files in {files[0].parent}")
    print(f"use: {CHECKPOINTS[args.name].usage}")
    return 0
