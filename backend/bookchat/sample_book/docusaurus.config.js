// @ts-check
// The sample book's site config. bookchat reads `url`, `baseUrl` and the docs
// `routeBasePath` from it (statically, without running node) to build citation links.
// localhost:3000 is where `docusaurus start` serves a site during development.

/** @type {import('@docusaurus/types').Config} */
const config = {
  title: 'bookchat',
  tagline: 'Ask the book, get answers that cite their pages',
  url: 'http://localhost:3000',
  baseUrl: '/',
  onBrokenLinks: 'throw',
  presets: [
    [
      'classic',
      /** @type {import('@docusaurus/preset-classic').Options} */
      ({
        docs: {
          routeBasePath: 'docs',
        },
        blog: false,
      }),
    ],
  ],
};

module.exports = config;
