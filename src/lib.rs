//! colloquy
