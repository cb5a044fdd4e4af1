/** Pieces of the test guests' domain XML shared by tinyGuestXml and linuxGuestXml (not public API). */

/** Escapes text for an XML attribute or element. */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** The start of a test guest's XML, up to the `<os>` type: TCG, one vCPU, the QEMU namespace when a second monitor is wanted. */
export function openingLines(o: { name: string; uuid: string | undefined; memoryMiB: number; qmpSocket: string | undefined }): string[] {
  return [
    `<domain type='qemu'${o.qmpSocket ? " xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'" : ''}>`,
    `  <name>${xmlEscape(o.name)}</name>`,
    ...(o.uuid ? [`  <uuid>${xmlEscape(o.uuid)}</uuid>`] : []),
    `  <memory unit='MiB'>${o.memoryMiB}</memory>`,
    '  <vcpu>1</vcpu>',
    '  <os>',
    "    <type arch='x86_64' machine='pc'>hvm</type>",
  ];
}

/** The end of a test guest's XML: no video, no balloon, and a second QMP monitor on `qmpSocket` if given. */
export function closingLines(qmpSocket: string | undefined): string[] {
  return [
    "    <video><model type='none'/></video>",
    "    <memballoon model='none'/>",
    '  </devices>',
    ...(qmpSocket
      ? ['  <qemu:commandline>', "    <qemu:arg value='-qmp'/>", `    <qemu:arg value='unix:${xmlEscape(qmpSocket)},server=on,wait=off'/>`, '  </qemu:commandline>']
      : []),
    '</domain>',
  ];
}
