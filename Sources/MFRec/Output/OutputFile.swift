import Foundation
import MFEngine

/// A file a command writes, written the way its path asks for:
///
/// - `-` is standard output (when the caller allows it);
/// - a symbolic link is followed: the file it points to is written (and its folder holds the temp file);
/// - a FIFO, a character device or any other file that is not a regular file is written directly;
/// - a regular file (or a new one) is written to `NAME.tmp-PID` beside it, synced and renamed onto it by
///   `commit()`, so an interrupted run leaves the old content. A temp file is removed when the write is
///   abandoned (the `OutputFile` goes away uncommitted), by `removeUnfinished()` (a command line calls it
///   on SIGINT/SIGTERM), and by a later write of the same path once its process is gone.
public final class OutputFile {
    /// The path as given.
    public let path: String
    /// The file written in the end (the link's target for a link; "-" for standard output).
    public let target: String
    /// Where the bytes go until `commit()`: the temp file for a regular file, else `target`.
    public let writingPath: String
    private let handle: FileHandle
    private let renames: Bool
    private var finished = false

    /// Opens `path` for writing (see the type's description).
    /// - Parameters:
    ///   - path: the file, `-` for standard output.
    ///   - allowStdout: whether `-` means standard output (otherwise it is refused).
    /// - Throws: `MFRecError` naming the path and the reason.
    public init(path: String, allowStdout: Bool = true) throws {
        self.path = path
        guard !path.isEmpty else { throw MFRecError.cannotWrite(path: path, reason: "the path is empty") }
        if path == "-" {
            guard allowStdout else {
                throw MFRecError.cannotWrite(
                    path: path, reason: "this command writes files into a folder, not to standard output")
            }
            target = "-"
            writingPath = "-"
            renames = false
            handle = FileHandle(fileDescriptor: dup(Self.standardOutput.withLock { $0 }), closeOnDealloc: true)
            return
        }
        target = try Self.resolveLinks(path)
        var info = stat()
        let exists = stat(target, &info) == 0
        if exists && (info.st_mode & S_IFMT) == S_IFDIR {
            throw MFRecError.cannotWrite(path: path, reason: "it is a folder")
        }
        if exists && (info.st_mode & S_IFMT) != S_IFREG {
            // A FIFO, a terminal, a device: write through it; there is nothing to rename onto.
            let fd = open(target, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw MFRecError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
            handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            writingPath = target
            renames = false
            return
        }
        Self.removeStaleTempFiles(of: target)
        writingPath = target + ".tmp-\(getpid())"
        let mode = exists ? mode_t(info.st_mode & 0o7777) : 0o644
        let fd = open(writingPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw MFRecError.cannotWrite(path: path, reason: String(cString: strerror(errno))) }
        if exists { fchmod(fd, mode) }  // the old file's permissions, not the umask's
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        renames = true
        Self.unfinished.withLock { _ = $0.insert(writingPath) }
    }

    deinit {
        if renames && !finished {
            Self.unfinished.withLock { _ = $0.remove(writingPath) }
            unlink(writingPath)
        }
    }

    /// The file descriptor being written (for writers that need one, such as zlib's).
    public var fileDescriptor: Int32 { handle.fileDescriptor }

    /// Appends bytes.
    /// - Parameter bytes: the bytes.
    /// - Throws: `MFRecError` (a full disk, a closed pipe).
    public func write<Bytes: DataProtocol>(_ bytes: Bytes) throws {
        do {
            try handle.write(contentsOf: bytes)
        } catch {
            throw MFRecError.cannotWrite(path: path, reason: "cannot write: \(systemReason(of: error))")
        }
    }

    /// Appends text as UTF-8.
    /// - Parameter text: the text.
    /// - Throws: `MFRecError`.
    public func write(_ text: String) throws { try write(Data(text.utf8)) }

    /// Finishes the file: for a regular file, syncs the temp file and renames it onto the target.
    /// - Throws: `MFRecError`; the old content of the target is then untouched.
    public func commit() throws {
        guard !finished else { return }
        if renames {
            guard fsync(handle.fileDescriptor) == 0 else {
                throw MFRecError.cannotWrite(path: path, reason: String(cString: strerror(errno)))
            }
            try Self.unfinished.withLock { paths in
                // Renamed only while still listed: a signal that removed the temp file wins.
                guard paths.remove(writingPath) != nil else {
                    throw MFRecError.cannotWrite(path: path, reason: "interrupted")
                }
                guard rename(writingPath, target) == 0 else {
                    let reason = String(cString: strerror(errno))
                    unlink(writingPath)
                    throw MFRecError.cannotWrite(path: path, reason: "cannot rename \(writingPath) onto it: \(reason)")
                }
            }
        }
        finished = true
    }

    /// Writes `data` to `path` in one go (see the type's description), committing it.
    /// - Parameters:
    ///   - data: the bytes.
    ///   - path: the file, `-` for standard output.
    ///   - allowStdout: whether `-` means standard output.
    /// - Throws: `MFRecError`.
    public static func write(_ data: Data, to path: String, allowStdout: Bool = true) throws {
        let file = try OutputFile(path: path, allowStdout: allowStdout)
        try file.write(data)
        try file.commit()
    }

    /// Creates a folder and its missing parents (`mkdir -p`).
    /// - Parameter folder: the folder.
    /// - Throws: `MFRecError` with the system's reason (for example "No such file or directory").
    public static func createFolder(_ folder: String) throws {
        var path = folder.hasPrefix("/") ? "/" : ""
        for part in folder.split(separator: "/") {
            path += (path.isEmpty || path.hasSuffix("/") ? "" : "/") + part
            var info = stat()
            if stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { continue }
            guard mkdir(path, 0o755) == 0 || errno == EEXIST else {
                throw MFRecError.cannotWrite(
                    path: folder, reason: "cannot create the folder: \(String(cString: strerror(errno)))")
            }
            guard stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR else {
                throw MFRecError.cannotWrite(path: folder, reason: "\(path) is not a folder")
            }
        }
    }

    /// The descriptor `-` writes to: standard output, unless `reserveStandardOutput()` moved it.
    private static let standardOutput = Locked<Int32>(STDOUT_FILENO)

    /// Keeps standard output for the data written to `-`, and sends everything else the process prints
    /// there to standard error instead (so that `--output - | …` gets only the data). Call it before
    /// printing anything.
    public static func reserveStandardOutput() {
        fflush(nil)  // every stdio stream, stdout included
        standardOutput.withLock { fd in
            guard fd == STDOUT_FILENO else { return }
            fd = dup(STDOUT_FILENO)
            dup2(STDERR_FILENO, STDOUT_FILENO)
        }
    }

    // MARK: Temp files

    private static let unfinished = Locked<Set<String>>([])

    /// Removes the temp files of every write of this process not yet committed, then runs `then` (for
    /// example, ending the process) before any write can commit: for a signal handler (not a POSIX signal
    /// handler itself; call it from a dispatch source).
    /// - Parameter then: what to do while no write can commit.
    public static func removeUnfinished(then: () -> Void = {}) {
        unfinished.withLock { paths in
            for path in paths { unlink(path) }
            paths.removeAll()
            then()
        }
    }

    /// Removes `TARGET.tmp-PID` files whose process is gone (a killed earlier run).
    static func removeStaleTempFiles(of target: String) {
        let url = URL(fileURLWithPath: target)
        let folder = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return }
        for name in names where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0 else { continue }
            if pid == getpid() || kill(pid, 0) == 0 || errno != ESRCH { continue }
            unlink((folder as NSString).appendingPathComponent(name))
        }
    }

    /// Follows symbolic links (also dangling ones: the file they name is created) to the final path.
    static func resolveLinks(_ path: String) throws -> String {
        var current = path
        for _ in 0..<40 {
            guard let destination = try? FileManager.default.destinationOfSymbolicLink(atPath: current) else {
                return current
            }
            current =
                destination.hasPrefix("/")
                ? destination
                : ((current as NSString).deletingLastPathComponent as NSString).appendingPathComponent(destination)
        }
        throw MFRecError.cannotWrite(path: path, reason: "too many levels of symbolic links")
    }
}

/// The system's words for a Foundation file error.
func systemReason(of error: Error) -> String {
    if let posix = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError,
        posix.domain == NSPOSIXErrorDomain
    {
        return String(cString: strerror(Int32(posix.code)))
    }
    let ns = error as NSError
    return ns.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32(ns.code))) : ns.localizedDescription
}
