import { expect } from 'vitest';

/** What the round trip needs of a QMP client (QmpClient, GuestQmpClient). */
interface Qmp {
  execute(command: string, args?: Record<string, unknown>, options?: { fds?: number[] }): Promise<unknown>;
}

/**
 * The fd-passing round trip the proxy tests share: `client` passes `fd` with add-fd as fd set `fdsetId`
 * while `other` is served meanwhile, puts a raw block node `nodeName` on /dev/fdset/N, `other` sees it in
 * query-named-block-nodes, then the node and the fd set go and no fd set is left.
 */
export async function fdsetBlockNodeRoundTrip(client: Qmp, other: Qmp, fd: number, ids: { fdsetId: number; nodeName: string }): Promise<void> {
  const { fdsetId, nodeName } = ids;
  const [added, status] = await Promise.all([client.execute('add-fd', { 'fdset-id': fdsetId }, { fds: [fd] }), other.execute('query-status')]);
  expect(added).toMatchObject({ 'fdset-id': fdsetId, fd: expect.any(Number) });
  expect(status).toMatchObject({ status: 'running' });
  await client.execute('blockdev-add', { driver: 'raw', 'node-name': nodeName, file: { driver: 'file', filename: `/dev/fdset/${fdsetId}` } });
  const nodes = (await other.execute('query-named-block-nodes')) as { 'node-name': string }[];
  expect(nodes.map((n) => n['node-name'])).toContain(nodeName);
  await client.execute('blockdev-del', { 'node-name': nodeName });
  await client.execute('remove-fd', { 'fdset-id': fdsetId });
  expect(await other.execute('query-fdsets')).toEqual([]);
}
