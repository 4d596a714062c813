// A free loopback port for a child process to listen on (the tests' redis-server, the benchmarks' servers).
import net from 'node:net';

/** A TCP port on 127.0.0.1 that nothing listened on a moment ago (the OS's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
