"""The static reader of JavaScript/TypeScript configs: what it knows, and what it names."""

from __future__ import annotations

from pathlib import Path

from bookchat.ingest.jseval import UNDEFINED, EnvValue, Unknown, default_export


def config(tmp_path: Path, text: str, name: str = "docusaurus.config.ts") -> object:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return default_export(path)


def test_template_literals_env_defaults_and_constants(tmp_path: Path) -> None:
    value = config(
        tmp_path,
        """
const org = 'acme';
const host = process.env.DEPLOY_HOST ?? `${org}.github.io`;
const base = process.env.BASE || '/book/';
const isPreview = process.env.CONTEXT === 'deploy-preview';
export default {
  url: `https://${host}`,
  baseUrl: isPreview ? '/' : base,
  trailingSlash: !!process.env.NETLIFY,
  title: `Docs for ${org.toUpperCase()}`,
  tagline: 'a' + "b" + 1,
};
""",
    )
    assert value == {
        "url": "https://acme.github.io",
        "baseUrl": "/book/",
        "trailingSlash": False,
        "title": "Docs for ACME",
        "tagline": "ab1",
    }


def test_a_bare_env_value_is_marked_as_such(tmp_path: Path) -> None:
    value = config(tmp_path, "module.exports = {url: process.env.SITE_URL};", "c.js")
    assert value == {"url": EnvValue("SITE_URL")}


def test_imports_of_json_and_constants_and_require(tmp_path: Path) -> None:
    (tmp_path / "versions.json").write_text('["3.1", "3.0"]', encoding="utf-8")
    (tmp_path / "site.constants.ts").write_text(
        "export const SITE = 'https://x.example';\nconst route = 'guide';\nexport {route};\n"
        "export default {slash: true};\n",
        encoding="utf-8",
    )
    value = config(
        tmp_path,
        """
import versions from './versions.json';
import settings, {SITE as site, route} from './site.constants';
import {themes} from 'prism-react-renderer';
const again = require('./versions.json');
export default {
  url: site,
  trailingSlash: settings.slash,
  last: versions[0],
  recent: versions.slice(0, 1),
  count: again.length,
  route,
  theme: themes.github,
};
""",
    )
    assert isinstance(value, dict)
    assert value["url"] == "https://x.example"
    assert value["trailingSlash"] is True
    assert (value["last"], value["recent"], value["count"]) == ("3.1", ["3.1"], 2)
    assert value["route"] == "guide"
    assert isinstance(value["theme"], Unknown)  # a package that is not installed here


def test_spreads_types_functions_and_regexes_do_not_derail_it(tmp_path: Path) -> None:
    value = config(
        tmp_path,
        """
import type {Config} from '@docusaurus/types';
import path from 'path';
type Options = {a?: string; b: Array<number>};
const common: Partial<Options> = {
  editUrl: ({docPath}) => `https://github.com/o/r/edit/main/${docPath}`,
  exclude: [/\\/_.*\\.mdx?$/, '**/*.test.md'],
  remarkPlugins: [[require('remark-math'), {strict: false}]],
} as const;
function helper(x: number): number { return x * 2 }
const config: Config = {
  url: 'https://ts.example',
  presets: [['classic', {docs: {...common, path: path.resolve(__dirname, '../docs')}}]],
  async headTags() { return []; },
  onBrokenLinks: helper(2) > 3 ? 'throw' : 'warn',
} satisfies Config;
export default config;
""",
    )
    assert isinstance(value, dict)
    assert value["url"] == "https://ts.example"
    docs = value["presets"][0][1]["docs"]
    assert docs["path"] == (tmp_path.parent / "docs").as_posix()
    assert set(docs) == {"editUrl", "exclude", "remarkPlugins", "path"}
    assert isinstance(value["onBrokenLinks"], Unknown)
    assert "helper(2)" in value["onBrokenLinks"].text


def test_an_async_config_function_is_called(tmp_path: Path) -> None:
    value = config(
        tmp_path,
        """
export default async function createConfigAsync() {
  const url = 'https://fn.example';
  return {url, baseUrl: `/${'v2'}/`, future: await import('./x.mjs')};
}
""",
        "docusaurus.config.mjs",
    )
    assert isinstance(value, dict)
    assert (value["url"], value["baseUrl"]) == ("https://fn.example", "/v2/")


def test_broken_source_never_raises(tmp_path: Path) -> None:
    for text in (
        "module.exports = { url: 'https://x.example',",
        "export default {{{",
        "const = ;; export default",
        "export default `unterminated ${",
        "\u0000\u0001 weird",
        "",
    ):
        value = config(tmp_path, text, "c.js")
        assert value is UNDEFINED or isinstance(value, dict | Unknown)
    assert config(tmp_path, "module.exports = { url: 'https://x.example',", "c.js") == {
        "url": "https://x.example"
    }


def test_real_config_cut_or_with_a_bracket_dropped_still_reads(tmp_path: Path) -> None:
    """However a real config is damaged, the reader returns (and never spins)."""
    real = (
        Path(__file__).resolve().parents[1]
        / "fixtures/sites/react-native-website/website/docusaurus.config.ts"
    ).read_text(encoding="utf-8")
    brackets = [i for i, ch in enumerate(real) if ch in "{}[]()`'\""]
    variants = [real[:cut] for cut in range(0, len(real), 1499)]
    variants += [real[:i] + real[i + 1 :] for i in brackets[::61]]
    for text in variants:
        value = config(tmp_path, text)
        assert value is UNDEFINED or isinstance(value, dict | Unknown)
    full = config(tmp_path, real)
    assert isinstance(full, dict)
    assert full["url"] == "https://reactnative.dev"
