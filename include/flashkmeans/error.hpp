// Errors thrown by the engine. Every failure of user input or of the device
// runtime becomes a flashkmeans::Error (never an abort), with a message that
// names the argument and what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace flashkmeans {

class Error : public std::runtime_error {
   public:
    using std::runtime_error::runtime_error;
};

/// Thrown when device memory runs out and no smaller plan fits either; the
/// message states the bytes needed and available.
class OutOfMemoryError : public Error {
   public:
    using Error::Error;
};

/// Thrown on the other ranks of a data-parallel fit when one rank failed
/// (its own error says why) and aborted the communicator.
class PeerFailure : public Error {
   public:
    using Error::Error;
};

}  // namespace flashkmeans
