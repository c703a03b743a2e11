"""The SFTP face of the mock core: a paramiko SSH server over the batch outbox and inbox."""
