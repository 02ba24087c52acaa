/** Why the build in `root`/dist is missing or older than a source it is built from; undefined when it is current. */
export function staleBuild(root: string): string | undefined;
