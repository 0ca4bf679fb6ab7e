// Proc: a child process of the harness (Redis, a service), started, stopped and its output logged.

import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { LOG_DIR } from './config.mjs';
import { trackChild, untrackChild } from './teardown.mjs';

/** Output lines kept in memory per process, for failure messages (all of it goes to LOG_DIR). */
const TAIL_LINES = 80;

/** A child process whose output goes to `LOG_DIR/<label>.log` and a tail kept in memory. */
export class Proc {
  constructor(label, program, args, env) {
    this.label = label;
    this.program = program;
    this.args = args;
    this.env = env;
    this.lines = [];
    this.child = undefined;
    this.exited = undefined; // promise of {code, signal} for the current child
  }

  start() {
    mkdirSync(LOG_DIR, { recursive: true });
    const log = createWriteStream(join(LOG_DIR, `${this.label}.log`), { flags: 'a' });
    log.write(`--- ${new Date().toISOString()} ${this.program} ${this.args.join(' ')}\n`);
    const child = spawn(this.program, this.args, {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', NO_COLOR: '1', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    trackChild(child);
    const echo = process.env.BROWSER_TEST_LOG ? (line) => process.stderr.write(`[${this.label}] ${line}\n`) : null;
    for (const stream of [child.stdout, child.stderr]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        log.write(chunk);
        const parts = (partial + chunk).split('\n');
        partial = parts.pop();
        for (const line of parts) {
          this.lines.push(line);
          echo?.(line);
        }
        if (this.lines.length > TAIL_LINES) this.lines.splice(0, this.lines.length - TAIL_LINES);
      });
    }
    this.exited = new Promise((ok) => {
      child.once('error', (err) => {
        this.lines.push(`spawn error: ${err.message}`);
        ok({ code: null, signal: null, error: err });
      });
      child.once('close', (code, signal) => ok({ code, signal }));
    }).then((status) => {
      untrackChild(child);
      if (this.child === child) this.child = undefined;
      log.end(`--- exited ${JSON.stringify(status)}\n`);
      return status;
    });
    return this;
  }

  get running() {
    return this.child !== undefined;
  }

  get pid() {
    return this.child?.pid;
  }

  /** The last lines it printed. */
  tail(n = TAIL_LINES) {
    return this.lines.slice(-n).join('\n');
  }

  /** `signal`, then SIGKILL if it is still running after `graceMs`; resolves once it exited. */
  async stop({ signal = 'SIGTERM', graceMs = 5_000 } = {}) {
    const child = this.child;
    if (!child) return;
    const exited = this.exited;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
}
