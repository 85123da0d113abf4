import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { logicalLines } from '../../scripts/lib/logical-lines.ts';
import { repoRoot } from './spawn-entry.ts';

/** One fenced code block of the README: its language tag, the section it is in, and its text. */
export interface CodeBlock {
  readonly lang: string;
  readonly section: string;
  readonly text: string;
}

/** Every fenced code block of `README.md`, in order, with the `##` section it sits in. */
export function readmeBlocks(path = join(repoRoot, 'README.md')): CodeBlock[] {
  const blocks: CodeBlock[] = [];
  let section = '';
  let open: { lang: string; lines: string[] } | undefined;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (open) {
      if (line.startsWith('```')) {
        blocks.push({ lang: open.lang, section, text: open.lines.join('\n') });
        open = undefined;
      } else open.lines.push(line);
    } else if (line.startsWith('```')) open = { lang: line.slice(3).trim(), lines: [] };
    else if (line.startsWith('## ')) section = line.slice(3).trim();
  }
  return blocks;
}

/** A shell command of a console transcript and the output the README shows after it. */
export interface Transcript {
  readonly command: string;
  readonly output: string[];
}

/**
 * Splits a `console` block into commands (`$ ` lines, with `\` continuation
 * lines joined) and the output lines shown under each.
 */
export function consoleCommands(text: string): Transcript[] {
  const out: { command: string; output: string[] }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.startsWith('$ ')) {
      let command = line.slice(2);
      while (command.endsWith('\\') && i + 1 < lines.length) command = `${command.slice(0, -1)} ${lines[++i]!.trim()}`;
      out.push({ command: command.trim(), output: [] });
    } else if (out.length > 0 && line.trim() !== '') out.at(-1)!.output.push(line);
  }
  return out;
}

/** The commands of a `sh` block: `\` continuations joined, comments and blank lines dropped. */
export function shellCommands(text: string): string[] {
  return logicalLines(text);
}
