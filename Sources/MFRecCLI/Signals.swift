import Dispatch
import Foundation
import MFRec

/// SIGINT, SIGTERM and SIGHUP end mfrec as they always did, after removing the temp files of outputs
/// not yet committed (`OutputFile.removeUnfinished`). Handled on a dispatch queue, not in signal context.
enum Signals {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    static func removeTempFilesOnExit() {
        // A parent may have started us with these blocked (a mask is inherited): take them.
        var set = sigset_t()
        sigemptyset(&set)
        for sig in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&set, sig) }
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                OutputFile.removeUnfinished {
                    // Dispatch's threads block signals: send it to the process, and hold the lock (no write
                    // commits) until a thread that takes it ends the process.
                    signal(sig, SIG_DFL)
                    kill(getpid(), sig)
                    sleep(5)  // a loaded machine may take a while to schedule the thread that takes it
                    _exit(128 + sig)  // no thread took it
                }
            }
            source.resume()
            sources.append(source)
        }
    }

    /// For `mfrec serve`: its service group shuts down gracefully on SIGTERM and SIGINT instead (in-flight
    /// requests finish, writes commit), so these handlers step aside. SIGHUP stays ignored.
    static func handOverToServer() {
        for source in sources { source.cancel() }
        sources = []
    }
}
