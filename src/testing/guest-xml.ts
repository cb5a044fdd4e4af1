/** Pieces of the test guests' domain XML shared by tinyGuestXml and linuxGuestXml (not public API). */

/** Escapes text for an XML attribute or element. */
export function xmlEscape(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
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
