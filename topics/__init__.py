"""The topic catalog as code, Kafka connection settings, admin and the embedded dev broker."""
