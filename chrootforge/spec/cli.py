"""`chrootforge new`: scaffold a namespace or an image folder."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "new",
        help="write a commented chrootforge.toml (NS) or image.toml (NS/IMAGE)",
        description="NS: a new namespace folder with a chrootforge.toml that builds from "
        "Gentoo's latest stage3 and snapshot. NS/IMAGE (inside an existing "
        "namespace): a new image folder with an image.toml. Every key is written, "
        "commented out with its default, from the spec's schema. Existing files "
        "are never overwritten.",
    )
    p.add_argument("target", metavar="NS|NS/IMAGE", help="a namespace folder, or an image folder inside one")
    p.add_argument("--parent", metavar="P", help='the image\'s parent (default: "scratch")')
    p.add_argument(
        "--package",
        dest="packages",
        action="append",
        default=[],
        metavar="ATOM",
        help="a package of the image (repeat for more)",
    )
    p.set_defaults(func=_new)


def _new(args) -> int:
    from chrootforge.errors import UsageError
    from chrootforge.spec.new import is_image_target, new_image, new_namespace, target_path

    target = target_path(args.target)
    if is_image_target(target):
        path = new_image(target, args.parent, args.packages)
        print(f"wrote {path}")
        return 0
    if args.parent or args.packages:
        raise UsageError(
            f"{target.resolve().parent} has no chrootforge.toml: --parent and --package are for "
            "an image inside a namespace",
            hint=f"create the namespace first: chrootforge new {target.parent}",
        )
    print(f"wrote {new_namespace(target)}")
    return 0
