/**
 * advlab's version, as in package.json (a test keeps the two equal). A
 * constant rather than a read of package.json, so the core loads in a page.
 */
export const ADVLAB_VERSION = '0.1.0';
