/**
 * Unix-socket calls that Node's net module does not offer: sendmsg(2) and recvmsg(2) with SCM_RIGHTS
 * ancillary data, so file descriptors can travel with QMP commands (QEMU's getfd/add-fd take the fds
 * that arrive with the command's bytes). libc is loaded through koffi on first use. Both calls are
 * non-blocking (MSG_DONTWAIT) and safe on Node's main thread.
 */
import koffi from 'koffi';

/** Linux's SCM_MAX_FD: the most descriptors one message may carry. */
export const MAX_FDS_PER_MESSAGE = 253;

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
const MSG_CTRUNC = 0x08;
const MSG_CMSG_CLOEXEC = 0x40000000;
export const EAGAIN = 11;
export const EINTR = 4;

// x86_64/aarch64 Linux layouts: struct msghdr (56 bytes), struct iovec (16), struct cmsghdr (16 + data).
const MSGHDR_SIZE = 56;
const IOVEC_SIZE = 16;
const CMSG_HEADER = 16;
const align8 = (n: number) => (n + 7) & ~7;

interface LibcSockets {
  sendmsg(fd: number, msg: bigint, flags: number): number | bigint;
  recvmsg(fd: number, msg: bigint, flags: number): number | bigint;
}

let libc: LibcSockets | undefined;

function api(): LibcSockets {
  if (!libc) {
    const lib = koffi.load('libc.so.6');
    libc = {
      sendmsg: lib.func('intptr_t sendmsg(int fd, void *msg, int flags)') as LibcSockets['sendmsg'],
      recvmsg: lib.func('intptr_t recvmsg(int fd, void *msg, int flags)') as LibcSockets['recvmsg'],
    };
  }
  return libc;
}

/** Writes a struct msghdr + iovec + SCM_RIGHTS control block into native memory at `base`. */
function layout(view: DataView, base: bigint, dataLen: number, fdCount: number): { controlLen: number; dataOffset: number } {
  const controlLen = fdCount > 0 ? CMSG_HEADER + align8(4 * fdCount) : 0;
  const iovOffset = MSGHDR_SIZE;
  const controlOffset = iovOffset + IOVEC_SIZE;
  const dataOffset = controlOffset + controlLen;
  view.setBigUint64(0, 0n, true); // msg_name
  view.setUint32(8, 0, true); // msg_namelen
  view.setBigUint64(16, base + BigInt(iovOffset), true); // msg_iov
  view.setBigUint64(24, 1n, true); // msg_iovlen
  view.setBigUint64(32, controlLen > 0 ? base + BigInt(controlOffset) : 0n, true); // msg_control
  view.setBigUint64(40, BigInt(controlLen), true); // msg_controllen
  view.setInt32(48, 0, true); // msg_flags
  view.setBigUint64(iovOffset, base + BigInt(dataOffset), true); // iov_base
  view.setBigUint64(iovOffset + 8, BigInt(dataLen), true); // iov_len
  return { controlLen, dataOffset };
}

export type SendResult = { sent: number } | { errno: number };

/**
 * One sendmsg(2) of `data` with `fds` attached (SCM_RIGHTS). The fds travel with the first byte
 * that is sent; the caller sends any unsent rest normally. Never blocks: EAGAIN comes back as errno.
 */
export function sendWithFds(socketFd: number, data: Uint8Array, fds: readonly number[]): SendResult {
  const size = MSGHDR_SIZE + IOVEC_SIZE + (CMSG_HEADER + align8(4 * fds.length)) + data.length;
  const mem = koffi.alloc('uint8', size) as bigint;
  try {
    const buf = koffi.view(mem, size);
    const view = new DataView(buf);
    const { controlLen, dataOffset } = layout(view, mem, data.length, fds.length);
    if (controlLen > 0) {
      const c = MSGHDR_SIZE + IOVEC_SIZE;
      view.setBigUint64(c, BigInt(CMSG_HEADER + 4 * fds.length), true); // cmsg_len = CMSG_LEN
      view.setInt32(c + 8, SOL_SOCKET, true);
      view.setInt32(c + 12, SCM_RIGHTS, true);
      fds.forEach((fd, i) => view.setInt32(c + CMSG_HEADER + 4 * i, fd, true));
    }
    new Uint8Array(buf, dataOffset, data.length).set(data);
    const r = Number(api().sendmsg(socketFd, mem, MSG_DONTWAIT | MSG_NOSIGNAL));
    return r < 0 ? { errno: koffi.errno() } : { sent: r };
  } finally {
    koffi.free(mem);
  }
}

export type ReceiveResult = { data: Buffer; fds: number[]; truncatedFds: boolean } | { errno: number };

/**
 * One recvmsg(2) of up to `maxBytes` bytes and up to `maxFds` descriptors (received close-on-exec).
 * An empty `data` with no fds means the peer closed. Never blocks: EAGAIN comes back as errno.
 */
export function receiveWithFds(socketFd: number, maxBytes: number, maxFds = MAX_FDS_PER_MESSAGE): ReceiveResult {
  const controlSpace = CMSG_HEADER + align8(4 * maxFds);
  const size = MSGHDR_SIZE + IOVEC_SIZE + controlSpace + maxBytes;
  const mem = koffi.alloc('uint8', size) as bigint;
  try {
    const buf = koffi.view(mem, size);
    const view = new DataView(buf);
    const { dataOffset } = layout(view, mem, maxBytes, maxFds);
    const r = Number(api().recvmsg(socketFd, mem, MSG_DONTWAIT | MSG_CMSG_CLOEXEC));
    if (r < 0) return { errno: koffi.errno() };
    const fds: number[] = [];
    const controlLen = Number(view.getBigUint64(40, true));
    let c = MSGHDR_SIZE + IOVEC_SIZE;
    const end = c + controlLen;
    while (c + CMSG_HEADER <= end) {
      const len = Number(view.getBigUint64(c, true));
      if (len < CMSG_HEADER) break;
      if (view.getInt32(c + 8, true) === SOL_SOCKET && view.getInt32(c + 12, true) === SCM_RIGHTS) {
        for (let o = CMSG_HEADER; o + 4 <= len; o += 4) fds.push(view.getInt32(c + o, true));
      }
      c += align8(len);
    }
    const truncatedFds = (view.getInt32(48, true) & MSG_CTRUNC) !== 0;
    return { data: Buffer.from(new Uint8Array(buf, dataOffset, r)), fds, truncatedFds };
  } finally {
    koffi.free(mem);
  }
}

const F_DUPFD_CLOEXEC = 1030;
type FcntlFn = (fd: number, cmd: number, ...variadic: unknown[]) => number;
let fcntlFn: FcntlFn | undefined;

/**
 * A close-on-exec duplicate of `fd` (fcntl F_DUPFD_CLOEXEC), or the errno (EBADF: `fd` is not open).
 * A transport that sends fds later than the call that gave them holds its own duplicates, so the
 * caller may close its copies at any time without the command carrying a closed or reused number.
 */
export function duplicateFd(fd: number): { fd: number } | { errno: number } {
  fcntlFn ??= koffi.load('libc.so.6').func('int fcntl(int fd, int cmd, ...)') as FcntlFn;
  const r = fcntlFn(fd, F_DUPFD_CLOEXEC, 'int', 0);
  return r < 0 ? { errno: koffi.errno() } : { fd: r };
}

/** libqemu's fd passing for unix-socket transports: `QmpClient.connect({ path }, { fdPassing: unixFdPassing })`. */
export const unixFdPassing = {
  sendWithFds,
};

const POLLIN = 0x001;
const POLLERR = 0x008;
const POLLHUP = 0x010;
const POLLFD_SIZE = 8;

type PollFn = ((fds: bigint, n: number, timeout: number) => number) & {
  async(fds: bigint, n: number, timeout: number, cb: (err: unknown, res: number) => void): void;
};
let pollFn: PollFn | undefined;

/**
 * Resolves with those of `fds` that are readable (or closed) within `timeoutMs`. The wait runs on one
 * of koffi's worker threads (poll(2)), so the event loop stays free; keep the timeout short.
 */
export function waitReadable(fds: readonly number[], timeoutMs: number): Promise<number[]> {
  pollFn ??= koffi.load('libc.so.6').func('int poll(void *fds, unsigned long nfds, int timeout)') as PollFn;
  const size = Math.max(1, fds.length) * POLLFD_SIZE;
  const mem = koffi.alloc('uint8', size) as bigint;
  const view = new DataView(koffi.view(mem, size));
  fds.forEach((fd, i) => {
    view.setInt32(i * POLLFD_SIZE, fd, true);
    view.setInt16(i * POLLFD_SIZE + 4, POLLIN, true);
    view.setInt16(i * POLLFD_SIZE + 6, 0, true);
  });
  return new Promise((resolve, reject) => {
    pollFn!.async(mem, fds.length, timeoutMs, (err, res) => {
      try {
        if (err) return reject(err instanceof Error ? err : new Error(String(err)));
        const ready: number[] = [];
        if (res > 0) {
          const after = new DataView(koffi.view(mem, size));
          fds.forEach((fd, i) => {
            if (after.getInt16(i * POLLFD_SIZE + 6, true) & (POLLIN | POLLERR | POLLHUP)) ready.push(fd);
          });
        }
        resolve(ready);
      } finally {
        koffi.free(mem);
      }
    });
  });
}
