/**
 * The logical lines of a shell script or Dockerfile: lines ending in `\` are
 * joined with the next (the backslash becomes a space), blank lines and `#`
 * comment lines are dropped, and each line is trimmed.
 */
export function logicalLines(text: string): string[] {
  const out: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    out.push((pending + line).trim());
    pending = '';
  }
  return out;
}
