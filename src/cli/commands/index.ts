// Every `sd` command, in the order `sd --help` lists them.
import type { Command } from '../command.js';
import { catCommand, lsCommand, statCommand } from './browse.js';
import { dupesCommand, searchCommand } from './find.js';
import { indexCommand } from './index-cmd.js';
import { initCommand } from './init.js';
import { locationCommand } from './location.js';
import { mountCommand, umountCommand } from './mount.js';
import { watchCommand } from './watch.js';

export const COMMANDS: readonly Command[] = [
  initCommand,
  locationCommand,
  indexCommand,
  watchCommand,
  mountCommand,
  umountCommand,
  lsCommand,
  statCommand,
  catCommand,
  searchCommand,
  dupesCommand,
];
