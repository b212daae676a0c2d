// The writer a mount started from the CLI uses for namespace changes.
import type { FsWriter } from '../../fuse/ops.js';
import { readOnlyWriter } from '../../node.js';
import type { Library } from '../../vdfs/library.js';

export function actionWriter(_library: Library): FsWriter {
  return readOnlyWriter;
}
