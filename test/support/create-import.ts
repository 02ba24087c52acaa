/** POST /api/imports's handler, called in-process as the Functions host calls it (its queue output sent). */
import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { createImport, planStep } from '../../functions/imports.js';
import type { JobQueue, StepMessage } from '../../lib/store/queue.js';
import { ctx } from './functions-http.js';

/**
 * POST /api/imports's handler called as the Functions host calls it: once it has returned, its queue output (the
 * plan step, functions/imports.ts `planStep`) is sent to `queue`, as the host sends a successful invocation's queue
 * outputs before it answers. The queue is where a test looks for what was enqueued, whichever way it went out.
 */
export async function createImportVia(
  queue: JobQueue,
  req: HttpRequest,
  context: InvocationContext = ctx(),
): Promise<HttpResponseInit> {
  const res = await createImport(req, context);
  for (const m of (context.extraOutputs.get(planStep) as StepMessage[] | undefined) ?? []) await queue.send(m);
  return res;
}
