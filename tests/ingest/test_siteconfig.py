"""Reading url, baseUrl and the docs routeBasePath from docusaurus.config.* without node."""

from __future__ import annotations

from pathlib import Path

from bookchat.ingest.siteconfig import (
    DEFAULT_SITE_URL,
    SiteConfig,
    read_site_config,
    resolve_site,
)

CLASSIC_JS = """
// @ts-check
// url: 'https://commented-out.example' must not be read
/* baseUrl: '/commented/' */
const {themes} = require('prism-react-renderer');

/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'My Book',
  url: 'https://book.example.org',
  baseUrl: "/handbook/",
  trailingSlash: false,
  presets: [
    [
      'classic',
      ({
        blog: {routeBasePath: 'news', showReadingTime: true},
        docs: {
          sidebarPath: './sidebars.js',
          routeBasePath: '/guide',
          editUrl: `https://github.com/o/r/tree/main/`,
        },
      }),
    ],
  ],
  themeConfig: {
    metadata: [{name: 'x', content: 'y'}],
    navbar: {items: [{href: 'https://github.com/o/r', label: 'GitHub'}]},
    announcementBar: {content: 'hi', url: 'https://deeper.example'},
  },
};

module.exports = config;
"""


def _site(tmp_path: Path, name: str, text: str | bytes) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    target = tmp_path / name
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")
    return docs


def test_classic_preset_config_is_read(tmp_path: Path) -> None:
    docs = _site(tmp_path, "docusaurus.config.js", CLASSIC_JS)
    site = read_site_config(docs)
    assert site == SiteConfig(
        site_url="https://book.example.org",
        base_url="/handbook/",
        route_base_path="guide",
        trailing_slash=False,
    )


def test_plugin_form_in_typescript_with_docs_at_root(tmp_path: Path) -> None:
    config = """
import type {Config} from '@docusaurus/types';
export default {
  url: 'https://ts.example',
  baseUrl: '/',
  presets: [['classic', {docs: false, blog: {routeBasePath: '/'}}]],
  plugins: [
    'docusaurus-plugin-sass',
    [
      '@docusaurus/plugin-content-docs',
      {id: 'default', path: 'docs', routeBasePath: '/'},
    ],
  ],
} satisfies Config;
"""
    docs = _site(tmp_path, "docusaurus.config.ts", config)
    site = read_site_config(docs)
    assert site.site_url == "https://ts.example"
    assert site.route_base_path == "/"
    assert site.trailing_slash is None


def test_mjs_config_with_an_async_factory(tmp_path: Path) -> None:
    config = """
export default async function createConfig() {
  return {
    url: 'https://mjs.example/',
    baseUrl: 'book',
  };
}
"""
    docs = _site(tmp_path, "docusaurus.config.mjs", config)
    site = read_site_config(docs)
    # Normalised: no trailing slash on the origin; baseUrl gets both slashes.
    assert site.site_url == "https://mjs.example"
    assert site.base_url == "/book/"
    assert site.route_base_path == "docs"


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    docs = _site(tmp_path, "docusaurus.config.js", CLASSIC_JS)
    site = read_site_config(
        docs, site_url="https://other.example", base_url="/", route_base_path="docs"
    )
    assert (site.site_url, site.base_url, site.route_base_path) == (
        "https://other.example",
        "/",
        "docs",
    )


def test_defaults_without_a_config_file(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    site = read_site_config(docs)
    assert site == SiteConfig(site_url=DEFAULT_SITE_URL)
    assert DEFAULT_SITE_URL == "http://localhost:3000"
    assert read_site_config(docs, route_base_path="/").route_base_path == "/"


def test_unbalanced_config_still_gives_what_it_can(tmp_path: Path) -> None:
    docs = _site(tmp_path, "docusaurus.config.js", "module.exports = { url: 'https://x.example',")
    assert read_site_config(docs).site_url == "https://x.example"


def test_url_from_the_environment_falls_back_with_one_warning(tmp_path: Path) -> None:
    config = "module.exports = { url: process.env.SITE_URL, baseUrl: '/' };"
    _site(tmp_path, "docusaurus.config.js", config)
    site = resolve_site(tmp_path)
    assert site.site_url == DEFAULT_SITE_URL
    assert len(site.warnings) == 1
    assert "docusaurus.config.js" in site.warnings[0]
    assert "`url`" in site.warnings[0]
    assert "process.env.SITE_URL" in site.warnings[0]
    flagged = resolve_site(tmp_path, site_url="https://flag.example")
    assert flagged.site_url == "https://flag.example"
    assert flagged.warnings == []


def test_template_literal_with_an_unknown_name_is_named(tmp_path: Path) -> None:
    config = "module.exports = { url: `https://${host}`, baseUrl: '/' };"
    _site(tmp_path, "docusaurus.config.js", config)
    site = resolve_site(tmp_path)
    assert site.site_url == DEFAULT_SITE_URL
    assert ["`https://${host}`" in w for w in site.warnings] == [True]


def test_config_that_is_not_utf8_uses_defaults_and_says_so(tmp_path: Path) -> None:
    docs = _site(tmp_path, "docusaurus.config.js", b"module.exports = {url: '\xff\xfe'};")
    assert read_site_config(docs) == SiteConfig(site_url=DEFAULT_SITE_URL)
    assert "not UTF-8" in resolve_site(tmp_path).warnings[0]


def test_blog_route_is_not_taken_for_docs(tmp_path: Path) -> None:
    config = """
module.exports = {
  url: 'https://x.example', baseUrl: '/',
  presets: [['classic', {blog: {routeBasePath: '/'}, docs: {sidebarPath: 's.js'}}]],
};
"""
    docs = _site(tmp_path, "docusaurus.config.js", config)
    assert read_site_config(docs).route_base_path == "docs"


# ---------------------------------------------------------------- real sites (tests/fixtures)
SITES = Path(__file__).resolve().parents[1] / "fixtures" / "sites"


def _routes(site) -> list[tuple[str, str | None, str | None, str]]:
    return [
        (r.path.relative_to(SITES).as_posix(), r.plugin, r.version, r.site.route_base_path)
        for r in site.roots
    ]


def test_react_native_site_folder_gives_every_docs_instance() -> None:
    site = resolve_site(SITES / "react-native-website" / "website")
    assert (site.site_url, site.base_url, site.trailing_slash) == (
        "https://reactnative.dev",
        "/",
        False,
    )
    assert _routes(site) == [
        ("react-native-website/website/versioned_docs/version-0.86", "default", "0.86", "docs"),
        ("react-native-website/website/architecture", "architecture", None, "architecture"),
        ("react-native-website/website/contributing", "contributing", None, "contributing"),
        ("react-native-website/website/community", "community", None, "community"),
    ]
    assert site.warnings == []
    text = "\n".join(site.describe())
    assert "site https://reactnative.dev/" in text
    assert "trailing slash removed" in text
    assert "-> /docs/ (plugin default, version 0.86)" in text
    assert "not indexed (--versions all to include): versions current, 0.85" in text


def test_react_native_all_versions_and_a_filter() -> None:
    website = SITES / "react-native-website" / "website"
    every = resolve_site(website, versions="all")
    default = [(v, route) for _, plugin, v, route in _routes(every) if plugin == "default"]
    # current is the docs folder beside website/, at /docs/next; 0.85 at /docs/0.85.
    assert default == [("current", "docs/next"), ("0.86", "docs"), ("0.85", "docs/0.85")]
    # The fixture keeps two released versions; the eight others have no folder here.
    assert sum("no docs folder at" in w for w in every.warnings) == 8
    picked = resolve_site(website, versions="current,0.8?")
    assert [v for _, p, v, _ in _routes(picked) if p == "default"] == ["current", "0.86", "0.85"]
    assert resolve_site(website, versions="9.9").roots[0].plugin == "architecture"


def test_jest_docs_beside_the_site_folder_and_each_version_folder() -> None:
    jest = SITES / "jest"
    site = resolve_site(jest / "website")
    assert site.site_url == "https://jestjs.io"
    assert _routes(site) == [
        ("jest/website/versioned_docs/version-30.4", "default", "30.4", "docs")
    ]
    # The docs folder itself is the unreleased version, which Docusaurus serves at /docs/next/.
    current = resolve_site(jest / "docs")
    assert _routes(current) == [("jest/docs", "default", "current", "docs/next")]
    older = read_site_config(jest / "website" / "versioned_docs" / "version-29.7")
    assert older.route_base_path == "docs/29.7"


def test_redux_docs_at_the_site_root() -> None:
    site = resolve_site(SITES / "redux" / "website")
    assert site.site_url == "https://redux.js.org"
    assert _routes(site) == [("redux/docs", "default", None, "/")]


# ---------------------------------------------------------------- version options
def _versioned(tmp_path: Path, options: str, versions: list[str], plugin: str = "") -> Path:
    import json

    (tmp_path / "docs").mkdir(parents=True, exist_ok=True)
    prefix = f"{plugin}_" if plugin else ""
    (tmp_path / f"{prefix}versions.json").write_text(json.dumps(versions), encoding="utf-8")
    for name in versions:
        (tmp_path / f"{prefix}versioned_docs" / f"version-{name}").mkdir(parents=True)
    if plugin:
        body = (
            "presets: [['classic', {docs: {}}]], "
            f"plugins: [['@docusaurus/plugin-content-docs', {{{options}}}]]"
        )
    else:
        body = f"presets: [['classic', {{docs: {{{options}}}}}]]"
    (tmp_path / "docusaurus.config.js").write_text(
        f"module.exports = {{url: 'https://v.example', {body}}};", encoding="utf-8"
    )
    return tmp_path


def test_last_version_and_version_paths_route_as_docusaurus_does(tmp_path: Path) -> None:
    site_dir = _versioned(
        tmp_path,
        "lastVersion: 'current', versions: {current: {path: 'latest'}, '1.0': {path: 'legacy'}}",
        ["2.0", "1.0"],
    )
    site = resolve_site(site_dir, versions="all")
    assert [(r.version, r.site.route_base_path, r.last) for r in site.roots] == [
        ("current", "docs/latest", True),
        ("2.0", "docs/2.0", False),
        ("1.0", "docs/legacy", False),
    ]
    assert [r.version for r in resolve_site(site_dir).roots] == ["current"]


def test_only_include_versions_and_no_current(tmp_path: Path) -> None:
    site_dir = _versioned(
        tmp_path,
        "onlyIncludeVersions: ['current', '1.0'], includeCurrentVersion: true",
        ["2.0", "1.0"],
    )
    site = resolve_site(site_dir, versions="all")
    # 2.0 is left out, so the last version is the first one left: 1.0 at /docs/.
    assert [(r.version, r.site.route_base_path) for r in site.roots] == [
        ("current", "docs/next"),
        ("1.0", "docs"),
    ]
    other = _versioned(tmp_path / "b", "includeCurrentVersion: false", ["2.0"])
    assert [r.version for r in resolve_site(other, versions="all").roots] == ["2.0"]
    off = _versioned(tmp_path / "c", "disableVersioning: true", ["2.0"])
    assert [(r.version, r.site.route_base_path) for r in resolve_site(off).roots] == [
        (None, "docs")
    ]


def test_docs_stand_in_for_a_landing_version_the_build_would_copy_there(tmp_path: Path) -> None:
    # pnpm.io's layout: docs/ is not served itself (includeCurrentVersion: false), and its
    # build copies it to versioned_docs/version-11.x, which a checkout does not have.
    site_dir = _versioned(
        tmp_path, "includeCurrentVersion: false, lastVersion: '11.x'", ["11.x", "10.x"]
    )
    (site_dir / "versioned_docs" / "version-11.x").rmdir()
    site = resolve_site(site_dir, versions="all")
    assert [(r.path.name, r.version, r.site.route_base_path, r.last) for r in site.roots] == [
        ("docs", "11.x", "docs", True),
        ("version-10.x", "10.x", "docs/10.x", False),
    ]
    assert any("indexing" in w and "in its place" in w for w in site.warnings)


def test_a_missing_version_is_skipped_where_docs_are_served_as_their_own(tmp_path: Path) -> None:
    # docs/ is the "next" version here: it must not pose as the released one.
    site_dir = _versioned(tmp_path, "", ["2.0", "1.0"])
    (site_dir / "versioned_docs" / "version-2.0").rmdir()
    site = resolve_site(site_dir, versions="all")
    assert [(r.version, r.site.route_base_path) for r in site.roots] == [
        ("current", "docs/next"),
        ("1.0", "docs/1.0"),
    ]
    assert any("no docs folder at" in w and "skipped" in w for w in site.warnings)


def test_a_second_instance_has_its_own_versions_files(tmp_path: Path) -> None:
    site_dir = _versioned(
        tmp_path,
        "id: 'community', path: 'community', routeBasePath: 'community'",
        ["1.0"],
        plugin="community",
    )
    (site_dir / "community").mkdir()
    site = resolve_site(site_dir, versions="all")
    assert [(r.plugin, r.version, r.site.route_base_path) for r in site.roots] == [
        ("default", None, "docs"),
        ("community", "current", "community/next"),
        ("community", "1.0", "community"),
    ]
    assert site.roots[2].path == site_dir / "community_versioned_docs" / "version-1.0"


def test_an_unreadable_route_names_itself_and_uses_the_default(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docusaurus.config.js").write_text(
        "module.exports = {url: 'https://x.example', "
        "presets: [['classic', {docs: {routeBasePath: getRoute()}}]]};",
        encoding="utf-8",
    )
    site = resolve_site(tmp_path)
    assert site.roots[0].site.route_base_path == "docs"
    assert len(site.warnings) == 1
    assert "routeBasePath" in site.warnings[0]
    assert "getRoute()" in site.warnings[0]
    assert "default ('docs')" in site.warnings[0]


def _site_folder(folder: Path, config: str | None, docs: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (folder / "docusaurus.config.js").write_text(config, encoding="utf-8")
    for name, text in docs.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def test_a_repository_root_finds_the_site_folder_inside(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _site_folder(repo, None, {"README.md": "# Repo\n", "CHANGELOG.md": "# Changes\n"})
    _site_folder(
        repo / "website",
        "module.exports = {url: 'https://x.example', baseUrl: '/',"
        " presets: [['classic', {docs: {path: '../docs'}}]]};",
        {},
    )
    _site_folder(repo / "docs", None, {"intro.md": "# Intro\n"})
    site = resolve_site(repo)
    assert site.config_file == (repo / "website" / "docusaurus.config.js").resolve()
    assert [r.path for r in site.roots] == [(repo / "docs").resolve()]
    assert site.roots[0].site.route_base_path == "docs"
    assert not site.warnings
    assert any(line.startswith("site folder ") and "inside" in line for line in site.describe())


def test_a_preset_that_wraps_classic_is_read_by_its_docs_options(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    preset = "require.resolve('docusaurus-plugin-internaldocs-fb/docusaurus-preset')"
    _site_folder(
        repo / "website",
        "module.exports = {url: 'https://metro.example', baseUrl: '/', presets: [["
        f"{preset}, {{docs: {{path: '../docs', routeBasePath: 'guide'}}, theme: {{}}}}]]}};",
        {},
    )
    _site_folder(repo / "docs", None, {"intro.md": "# Intro\n"})
    site = resolve_site(repo / "website")
    assert [r.path for r in site.roots] == [(repo / "docs").resolve()]
    assert site.roots[0].site.route_base_path == "guide"
    # A preset without docs options (a theme's) still says nothing about the docs.
    (repo / "website" / "docusaurus.config.js").write_text(
        "module.exports = {url: 'https://x.example', baseUrl: '/',"
        " presets: [['some-theme-preset', {theme: {}}]]};",
        encoding="utf-8",
    )
    assert resolve_site(repo / "website").roots == []


def test_several_sites_in_a_repository_prefer_website_and_say_so(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    config = "module.exports = {url: 'https://x.example', baseUrl: '/'};"
    _site_folder(repo / "blog-site", config, {"docs/a.md": "# A\n"})
    _site_folder(repo / "website", config, {"docs/b.md": "# B\n"})
    site = resolve_site(repo)
    assert site.config_file is not None
    assert site.config_file.parent.name == "website"
    assert len(site.warnings) == 1
    assert "several Docusaurus sites" in site.warnings[0]
    assert "blog-site" in site.warnings[0]


def test_a_site_folder_without_its_config_serves_docs_at_docs(tmp_path: Path) -> None:
    site_dir = _site_folder(
        tmp_path / "website",
        None,
        {
            "sidebars.js": "module.exports = {};",
            "docs/intro.md": "# Intro\n",
            "versions.json": '["1.0"]',
            "versioned_docs/version-1.0/intro.md": "# Intro 1.0\n",
            "blog/post.md": "# Post\n",
        },
    )
    site = resolve_site(site_dir)
    # The released version readers land on, at /docs/ (not the folder itself at /docs/docs/).
    [root] = site.roots
    assert root.path == (site_dir / "versioned_docs" / "version-1.0").resolve()
    assert root.site.route_base_path == "docs"
    assert [r.version for r in site.other_versions] == ["current"]
    assert site.other_versions[0].site.route_base_path == "docs/next"
    assert site.site_dir == site_dir.resolve()
    assert "no docusaurus.config" in site.warnings[0]


def test_a_plain_docs_folder_is_still_a_docs_folder(tmp_path: Path) -> None:
    docs = _site_folder(tmp_path / "handbook", None, {"intro.md": "# Intro\n", "a/b.md": "# B\n"})
    site = resolve_site(docs)
    assert [r.path for r in site.roots] == [docs.resolve()]
    assert site.roots[0].site.route_base_path == "docs"
