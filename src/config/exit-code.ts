/** The exit code for an invalid or missing config file, for every Trinity process. */
export const EXIT_CONFIG = 2
