// The writer a mount started from the CLI uses for namespace changes: the ActionManager.
import type { FsWriter } from '../../fuse/ops.js';
import { ActionManager } from '../../vdfs/actions/action-manager.js';
import type { Library } from '../../vdfs/library.js';

export function actionWriter(library: Library): FsWriter {
  return new ActionManager(library, { actor: 'fuse' });
}
