"""Reading url, baseUrl and the docs routeBasePath from docusaurus.config.* without node."""

from __future__ import annotations

from pathlib import Path

import pytest

from bookchat.ingest.siteconfig import (
    DEFAULT_SITE_URL,
    SiteConfig,
    SiteConfigError,
    read_site_config,
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


def test_unbalanced_config_is_a_clear_error(tmp_path: Path) -> None:
    docs = _site(tmp_path, "docusaurus.config.js", "module.exports = { url: 'https://x.example',")
    with pytest.raises(SiteConfigError, match=r"cannot understand .*docusaurus\.config\.js"):
        read_site_config(docs)


def test_computed_url_needs_the_flag(tmp_path: Path) -> None:
    config = "module.exports = { url: process.env.SITE_URL, baseUrl: '/' };"
    docs = _site(tmp_path, "docusaurus.config.js", config)
    with pytest.raises(SiteConfigError, match="--site-url"):
        read_site_config(docs)
    assert read_site_config(docs, site_url="https://flag.example").site_url == (
        "https://flag.example"
    )


def test_template_literal_with_interpolation_is_not_a_literal(tmp_path: Path) -> None:
    config = "module.exports = { url: `https://${host}`, baseUrl: '/' };"
    docs = _site(tmp_path, "docusaurus.config.js", config)
    with pytest.raises(SiteConfigError):
        read_site_config(docs)


def test_config_that_is_not_utf8_is_an_error(tmp_path: Path) -> None:
    docs = _site(tmp_path, "docusaurus.config.js", b"module.exports = {url: '\xff\xfe'};")
    with pytest.raises(SiteConfigError, match="cannot read"):
        read_site_config(docs)


def test_blog_route_is_not_taken_for_docs(tmp_path: Path) -> None:
    config = """
module.exports = {
  url: 'https://x.example', baseUrl: '/',
  presets: [['classic', {blog: {routeBasePath: '/'}, docs: {sidebarPath: 's.js'}}]],
};
"""
    docs = _site(tmp_path, "docusaurus.config.js", config)
    assert read_site_config(docs).route_base_path == "docs"
