/**
 * Render counts by component, exposed as `window.dynamergeRenders` so the
 * real-browser test can check that a change to one record re-renders only
 * the components that read it. Counting in the render body counts renders,
 * not commits, which is what the test bounds.
 */
declare global {
  interface Window {
    dynamergeRenders?: Record<string, number>;
  }
}

/** countRender adds one render of `key` (e.g. "row:<id>"). */
export function countRender(key: string): void {
  const counts = (window.dynamergeRenders ??= {});
  counts[key] = (counts[key] ?? 0) + 1;
}
