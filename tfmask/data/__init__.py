"""Stage 1, data: a folder of images and annotations -> validated TFRecords.

``sources/`` reads each input format into :class:`tfmask.annotation.Sample`;
``convert`` (local processes) and ``convert_beam`` (Apache Beam) run the
readers, split train/val and write ``records/`` through the one writer;
``report`` lists every problem found; ``pixels`` scans mask values;
``preview`` draws what the records hold; ``synth`` makes a dataset to try it
all. Nothing in this package imports TensorFlow except
:func:`tfmask.data.records.reader.read_examples`.
"""
